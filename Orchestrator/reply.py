"""One answer to one user text, for every front door: a command handler's, or the LLM's.

The voice loop, `chat`, `turn`, the control API, the OpenAI routes and Wyoming all answer
through `Replier.stream()`, so what a test or a benchmark sees is what the user hears.
"""
from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from LLM import AnswerStream, EnhancedLLMManager, GenerationOptions
from LLM.conversation import Conversation
from LLM.inputs import check_user_text
from LLM.manager import ChatResult
from Orchestrator.intents import Controls, IntentMatch, Intents


class CommandAnswer(AnswerStream):
    """A command's answer, read like the LLM's: its text, then its own result."""

    def __init__(self, intents: Intents, match: IntentMatch, conversation: Conversation,
                 controls: Controls | None) -> None:
        self._started = time.perf_counter()
        self._answered = ChatResult("", "intent", 0.0, None, 0, match.intent)
        super().__init__(self._run(intents, match, conversation, controls), lambda: self._answered)

    async def _run(self, intents: Intents, match: IntentMatch, conversation: Conversation,
                   controls: Controls | None) -> AsyncGenerator[str, None]:
        handled = await intents.handle(match, conversation.last_reply, controls)
        elapsed = time.perf_counter() - self._started
        self._answered = ChatResult(handled.text, "intent", elapsed, elapsed, 0, match.intent)
        if handled.text:
            conversation.last_reply = handled.text
            yield handled.text


class Replier:
    """Commands first (exact answers: time, timers, devices), then the LLM."""

    def __init__(self, llm: EnhancedLLMManager, intents: Intents | None = None) -> None:
        self.llm = llm
        self.intents = intents

    def stream(self, text: str, conversation: Conversation | None = None, language: str | None = None,
               controls: Controls | None = None, options: GenerationOptions | None = None) -> AnswerStream:
        """The answer's text pieces as they come, then its own `.result`; raises LlmInputError for bad text.

        `controls` is the caller's speaker (volume, stop), when it has one; `options` (max_tokens,
        temperature, stop) bound the LLM's part of one answer (the OpenAI route).
        """
        text = check_user_text(text, self.llm.config.llm.max_input_chars)
        conversation = conversation or self.llm.conversation
        if self.intents is not None and (match := self.intents.match(text, language)) is not None:
            return CommandAnswer(self.intents, match, conversation, controls)
        return self.llm.stream(text, conversation, language, options)
