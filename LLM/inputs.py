"""Reject user text that no model should see, before it reaches the conversation."""
from __future__ import annotations

import unicodedata

from LLM.errors import LlmInputError

_ALLOWED_CONTROLS = {"\n", "\r", "\t"}


def check_user_text(text: str, max_chars: int) -> str:
    """The text stripped, or LlmInputError naming what is wrong with it."""
    if not isinstance(text, str):
        raise LlmInputError(f"chat input must be text, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise LlmInputError("chat input is empty")
    if len(stripped) > max_chars:
        raise LlmInputError(f"chat input is {len(stripped)} characters long, above llm.max_input_chars={max_chars}")
    if any(_is_binary(ch) for ch in stripped):
        raise LlmInputError("chat input looks binary (control characters or undecodable bytes), not text")
    return stripped


def _is_binary(ch: str) -> bool:
    # Undecodable bytes reach Python as lone surrogates (category Cs) through surrogateescape.
    category = unicodedata.category(ch)
    return category == "Cs" or (category == "Cc" and ch not in _ALLOWED_CONTROLS)
