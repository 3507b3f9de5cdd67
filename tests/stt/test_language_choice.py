"""Language detection keeps to stt.languages: a two-word command is often taken for a language
nobody speaks here, and Whisper then writes that language."""
from __future__ import annotations

from STT.whisper_backend import _LanguageSpy


class _Model:
    def detect_language(self, *args, **kwargs):
        return [[("<|zh|>", 0.5), ("<|nn|>", 0.3), ("<|en|>", 0.15), ("<|fr|>", 0.05)]]


def test_the_likeliest_allowed_language_is_decoded():
    spy = _LanguageSpy(_Model(), ["en", "fr"])
    assert spy.detect_language(None)[0][0] == ("<|en|>", 0.15) and spy.detected == ("en", 0.15)


def test_without_a_list_any_language_may_be_detected():
    spy = _LanguageSpy(_Model(), None)
    assert spy.detect_language(None)[0][0][0] == "<|zh|>"
