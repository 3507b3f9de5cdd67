"""One answer to one user text, for every front door: an intent handler's, or the LLM's.

The voice loop, `chat`, `turn`, the control API, the OpenAI routes and Wyoming all answer
through `Replier.stream()`, so what a test or a benchmark sees is what the user hears.
"""
from __future__ import annotations

from LLM import AnswerStream, EnhancedLLMManager, GenerationOptions
from LLM.conversation import Conversation


class Replier:
    """Intents first (exact answers: time, timers, devices), then the LLM."""

    def __init__(self, llm: EnhancedLLMManager) -> None:
        self.llm = llm

    def stream(self, text: str, conversation: Conversation | None = None, language: str | None = None,
               options: GenerationOptions | None = None) -> AnswerStream:
        """The answer's text pieces as they come, then its own `.result`; raises LlmInputError for bad text.

        `options` (max_tokens, temperature, stop) bound the LLM's part of one answer (the OpenAI route)."""
        return self.llm.stream(text, conversation, language, options)
