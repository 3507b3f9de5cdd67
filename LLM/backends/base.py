"""What the manager needs from a backend, so the fallback chain can treat them alike."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import AsyncGenerator, Protocol


@dataclass(frozen=True)
class GenerationRequest:
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str] = field(default_factory=list)
    repeat_penalty: float = 1.0
    answer_so_far: str = ""  # generation goes on after this text (an answer that stepped aside for a voice turn)


@dataclass
class GenerationStats:
    """Filled by the backend while it streams; read by the manager for metrics and ChatResult."""

    tokens_in: int = 0
    tokens_out: int = 0
    tokens_evaluated: int = 0  # prompt tokens the model's cache did not serve
    context_tokens: int = 0


class LlmBackend(Protocol):
    name: str
    kind: str
    model: str

    async def start(self) -> None:
        """Load what must be loaded; raise a LuxaError with a one-line reason on failure."""

    def stream(self, request: GenerationRequest, stats: GenerationStats) -> AsyncGenerator[str, None]:
        """Raw text pieces as the model writes them; closing the iterator stops generation."""

    def health(self) -> dict:
        ...

    async def close(self) -> None:
        ...
