"""Reject what Whisper is known to invent instead of passing it to the LLM.

Two kinds of bad output, handled differently:
- garbage (a decoder stuck in a loop: one character or a few words repeated on and on) means the
  backend misbehaved, so the manager treats it as a failure and asks the next backend;
- subtitle credits ("thanks for watching", "Sous-titrage ST' 501") are what Whisper says over
  silence or noise because its training data had them at the end of videos: the model worked,
  there was just nothing to hear, so they are removed and the text may end up empty.
"""
from __future__ import annotations

import re
import unicodedata

# Matched against a whole sentence after normalise(); prefixes end with a space.
HALLUCINATED_SENTENCES = frozenset({
    "thanks for watching", "thank you for watching", "thanks for watching and see you next time",
    "thank you for watching and see you next time", "please subscribe", "like and subscribe",
    "please like and subscribe", "see you in the next video", "see you next time",
    "merci d avoir regardé cette vidéo", "merci d avoir regardé", "merci de votre attention",
    "abonnez vous", "n oubliez pas de vous abonner", "vielen dank fürs zuschauen",
    "untertitel im auftrag des zdf für funk 2017", "gracias por ver el video",
})
HALLUCINATED_PREFIXES = (
    "subtitles by ", "subtitled by ", "captions by ", "transcribed by ", "translated by ",
    "sous titrage ", "sous titres réalisés par ", "sous titres par ", "sous titres fait par ",
    "untertitel von ", "untertitel der ", "subtítulos por ", "subtítulos realizados por ",
)
# Matched anywhere in a sentence: credits for a subtitling community, never spoken to an assistant.
HALLUCINATED_FRAGMENTS = ("amara org",)
_SENTENCE_END = re.compile(r"(?<=[.!?…。])\s+")


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, spaces collapsed: the form used for matching and WER."""
    text = unicodedata.normalize("NFC", text).lower()
    text = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text)
    return " ".join(text.split())


def is_hallucinated_sentence(sentence: str) -> bool:
    norm = normalise(sentence)
    if not norm:
        return False
    return (
        norm in HALLUCINATED_SENTENCES
        or (norm + " ").startswith(HALLUCINATED_PREFIXES)
        or any(fragment in norm for fragment in HALLUCINATED_FRAGMENTS)
    )


def strip_hallucinations(text: str) -> str:
    """Drop the sentences that are known subtitle credits; keep the rest as it was written."""
    kept = [s for s in _SENTENCE_END.split(text.strip()) if s and not is_hallucinated_sentence(s)]
    return " ".join(kept).strip()


def collapse_repeated_utterance(text: str) -> str:
    """One sentence said once, not the decoder's copy of it: Whisper with a short encoder window and a
    prompt can write a whole short utterance twice ("Turn on the living room lamp. Turn on the living
    room lamp.", whisper-base on one 2-core machine, every time), sometimes with a cut third copy.
    Too short a loop for garbage_reason, and no command matches it. People do not say the same whole
    sentence twice in one breath; "stop, stop" is one sentence and stays."""
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s]
    first = normalise(sentences[0]) if sentences else ""
    if len(sentences) < 2 or not first:
        return text
    *copies, last = (normalise(s) for s in sentences[1:])
    whole_copy = bool(copies) or last == first  # a cut copy counts only after a whole one
    if whole_copy and all(c == first for c in copies) and last and (first + " ").startswith(last + " "):
        return sentences[0]
    return text


def garbage_reason(text: str, max_word_repeats: int, max_char_repeats: int) -> str | None:
    """Why this text looks like a decoding loop, or None when it looks like language."""
    char_run = re.search(r"(\S)\1{%d,}" % max_char_repeats, text)
    if char_run:
        return f"character {char_run.group(1)!r} repeated more than {max_char_repeats} times"
    words = normalise(text).split()
    phrase = _repeated_phrase(words, max_word_repeats)
    if phrase:
        return f"{phrase!r} repeated more than {max_word_repeats} times in a row"
    return None


def _repeated_phrase(words: list[str], max_repeats: int, longest_phrase: int = 8) -> str | None:
    """A phrase of 1..longest_phrase words that occurs more than max_repeats times back to back."""
    for size in range(1, longest_phrase + 1):
        needed = size * (max_repeats + 1)
        for start in range(0, len(words) - needed + 1):
            phrase = words[start:start + size]
            if all(words[start + k] == phrase[k % size] for k in range(needed)):
                return " ".join(phrase)
    return None
