"""The LLM stage: EnhancedLLMManager streams speakable answers from local models with fallbacks."""
from LLM.conversation import Conversation
from LLM.manager import Answer, AnswerStream, ChatResult, EnhancedLLMManager, GenerationOptions

__all__ = ["Answer", "AnswerStream", "ChatResult", "Conversation", "EnhancedLLMManager", "GenerationOptions"]
