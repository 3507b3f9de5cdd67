"""Conversation memory: a system prompt plus the recent turns that fit a token budget.

The budget is counted with the serving model's own tokenizer, because a character estimate is
off by a factor of two between English and French and the context window is counted in tokens.
The system prompt is outside the budget and never cut: it carries the persona and the "short,
spoken, no markdown" rules that every answer depends on.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Literal

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant"]
CUT_MARK = "…"  # ends an answer the user interrupted, so the model knows it was not heard in full


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def estimate_tokens(text: str) -> int:
    """Used only until a tokenizer is known (no GGUF model loaded): about 4 characters a token."""
    return len(text) // 4 + 1


@dataclass
class Conversation:
    system_prompt: str
    token_budget: int
    count_tokens: Callable[[str], int] = estimate_tokens
    turns: list[Message] = field(default_factory=list)
    last_reply: str = ""  # what the user last heard, from the LLM or a command handler ("repeat that")

    def add_user(self, text: str) -> None:
        self._add(Message("user", text))

    def add_assistant(self, text: str) -> None:
        self._add(Message("assistant", text))

    def set_last_reply(self, heard_text: str) -> None:
        """After a barge-in: keep only what the user actually heard of the last answer."""
        heard = heard_text.strip()
        self.last_reply = heard
        content = f"{heard}{CUT_MARK}" if heard else CUT_MARK
        if self.turns and self.turns[-1].role == "assistant":
            self.turns[-1] = Message("assistant", content)
        else:
            self.turns.append(Message("assistant", content))
        self.trim()

    def replies_to_other_questions(self, question: str) -> list[str]:
        """The kept answers to questions other than `question` (asking the same thing twice may get the same answer)."""
        asked = question.strip().lower()
        return [t.content for q, t in zip(self.turns, self.turns[1:])
                if q.role == "user" and t.role == "assistant" and q.content.strip().lower() != asked]

    def keep_only_last_question(self) -> None:
        """Forget the history before the newest question: the model answered it again without that
        history, and its cache now holds only this exchange, so the next turn extends it warm."""
        start = self._protected_from()
        if start > 0:
            del self.turns[:start]

    def messages(self) -> list[dict[str, str]]:
        """What the chat template gets: the system prompt, then the kept turns in order."""
        return [Message("system", self.system_prompt).as_dict()] + [t.as_dict() for t in self.turns]

    def history_tokens(self) -> int:
        return sum(self._tokens(t) for t in self.turns)

    def clear(self) -> None:
        self.turns.clear()

    def trim(self) -> None:
        """Drop the oldest turns until the rest fits; the latest question and its answer stay."""
        dropped = 0
        while self.history_tokens() > self.token_budget and self._protected_from() > 0:
            self.turns.pop(0)
            dropped += 1
            # A history that starts with an answer to a forgotten question confuses small models.
            while self.turns[0].role == "assistant" and self._protected_from() > 0:
                self.turns.pop(0)
                dropped += 1
        if dropped:
            log.debug("conversation: dropped %d old turns to stay within %d tokens", dropped, self.token_budget)

    def _protected_from(self) -> int:
        """Index of the newest user turn (or of the last turn when there is none)."""
        for index in range(len(self.turns) - 1, -1, -1):
            if self.turns[index].role == "user":
                return index
        return len(self.turns) - 1

    def _add(self, message: Message) -> None:
        self.turns.append(message)
        self.trim()

    def _tokens(self, message: Message) -> int:
        # The role name stands in for the template's per-message framing tokens.
        return self.count_tokens(f"{message.role}\n{message.content}")
