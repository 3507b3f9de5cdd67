"""LLM errors the user sees as one line (the CLI prints them and exits non-zero)."""
from Core.errors import LuxaError


class LlmInputError(LuxaError):
    """Text the assistant will not send to a model: empty, too long, or not text at all."""


class SwapRefused(LuxaError):
    """A hot-swap that would not fit in memory or names a backend that cannot be swapped."""
