"""LLM backends: each turns chat messages into a stream of raw text pieces."""
from LLM.backends.base import GenerationRequest, GenerationStats, LlmBackend

__all__ = ["GenerationRequest", "GenerationStats", "LlmBackend"]
