"""Fit a turn's prompt into what can be evaluated before the user gives up waiting.

When the cache cannot serve the history (another conversation used the model in between, a
model swap, a model that cannot shift its cache), evaluating the whole history again costs
seconds on a CPU. Rather than time out into the apology, the turn is answered from fewer of
the oldest exchanges: the system prompt and the question always stay.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

Messages = list[dict[str, str]]

# How fast a new sample moves the estimate; prompt evaluation speed changes with the load.
_SMOOTHING = 0.3
# Samples from very short evaluations are mostly fixed overhead and would underrate the model.
MIN_SAMPLE_TOKENS = 32


@dataclass
class EvalRate:
    """Prompt-evaluation speed of one loaded model, in tokens per second (moving average)."""

    tokens_per_s: float | None = None
    samples: int = field(default=0)

    def observe(self, tokens: int, seconds: float) -> None:
        if tokens < MIN_SAMPLE_TOKENS or seconds <= 0:
            return
        rate = tokens / seconds
        self.tokens_per_s = rate if self.tokens_per_s is None else (
            (1 - _SMOOTHING) * self.tokens_per_s + _SMOOTHING * rate)
        self.samples += 1

    def seconds_for(self, tokens: int) -> float:
        """0 until measured: the first turns are never shortened on a guess."""
        return tokens / self.tokens_per_s if self.tokens_per_s else 0.0


def without_oldest_exchange(messages: Messages) -> Messages | None:
    """The messages less the oldest question and its answer; None when only the question is left."""
    head = 1 if messages and messages[0]["role"] == "system" else 0
    body = messages[head:]
    last_user = max((i for i, m in enumerate(body) if m["role"] == "user"), default=len(body) - 1)
    if last_user <= 0:
        return None
    drop = 1
    # a history that starts with an answer to a forgotten question confuses small models
    while drop < last_user and body[drop]["role"] != "user":
        drop += 1
    return messages[:head] + body[drop:]


@dataclass(frozen=True)
class Fitted:
    messages: Messages
    dropped_messages: int


def fit(messages: Messages, uncached_tokens: Callable[[Messages], tuple[int, int]], max_prompt_tokens: int,
        rate: EvalRate, budget_s: float) -> Fitted:
    """Drop the oldest exchanges until the prompt fits the context and its uncached part fits
    `budget_s`. `uncached_tokens(messages)` returns (prompt tokens, tokens the cache lacks)."""
    current, dropped = messages, 0
    while True:
        total, uncached = uncached_tokens(current)
        if total <= max_prompt_tokens and rate.seconds_for(uncached) <= budget_s:
            return Fitted(current, dropped)
        shorter = without_oldest_exchange(current)
        if shorter is None:
            return Fitted(current, dropped)
        dropped += len(current) - len(shorter)
        current = shorter
