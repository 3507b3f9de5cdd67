"""The LLM stage: EnhancedLLMManager streams speakable answers from local models with fallbacks."""
from LLM.conversation import Conversation
from LLM.manager import ChatResult, EnhancedLLMManager

__all__ = ["ChatResult", "Conversation", "EnhancedLLMManager"]
