"""The LLM stage: EnhancedLLMManager streams speakable answers from local models with fallbacks."""
from LLM.conversation import Conversation
from LLM.manager import AnswerStream, ChatResult, EnhancedLLMManager, GenerationOptions

__all__ = ["AnswerStream", "ChatResult", "Conversation", "EnhancedLLMManager", "GenerationOptions"]
