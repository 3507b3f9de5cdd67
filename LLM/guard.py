"""Keeping a small model's answer usable over a long session.

A 135M-parameter model, given a long history, starts answering every question with an earlier
reply, or reads its system prompt back; given an odd question it may return nothing speakable.
The first words of an answer are enough to see it (they are held anyway until the first sentence
chunk is ready for the voice), so the manager checks them here and, when they are bad, asks once
more with the question alone. Answers are also cut after `llm.max_sentences` sentences: the
model is told to be brief, and a voice reply that goes on is worse than one that stops.
"""
from __future__ import annotations

import datetime as dt
import difflib
import re
from zoneinfo import ZoneInfo

from babel.dates import format_date

CHECK_WORDS = 4  # judge an answer once it has this many words (or a whole sentence)
RECITAL_WORDS = 4  # this many words in a row from the system prompt is a recital
# an answer whose opening is this similar to an earlier reply's repeats it
# ("The capital of Germany" after "The capital of France" does not)
SAME_START = 0.92
_WORD = re.compile(r"[\w'’]+")
_SENTENCE_END = re.compile(r"[.!?…](?=\s|$)")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])[\"”»']?\s+")
# the commonest short words of the languages LUXA's prompts cover: enough to see an answer in the wrong one
_COMMON = {
    "en": {"the", "is", "and", "a", "an", "of", "to", "you", "it", "in", "that", "for", "are", "with", "this", "i"},
    "fr": {"le", "la", "les", "est", "et", "un", "une", "des", "je", "vous", "il", "de", "du", "que", "pour", "c'est"},
}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ready(text: str) -> bool:
    """Enough of the answer to judge it (punctuation alone is not)."""
    said = words(text)
    return len(said) >= CHECK_WORDS or (bool(said) and bool(_SENTENCE_END.search(text.strip())))


def _repeats(said: list[str], earlier: list[str]) -> bool:
    """The opening `said` (its first CHECK_WORDS words) is how a sentence of an earlier reply began."""
    opening = " ".join(said[:CHECK_WORDS])
    for reply in earlier:  # any sentence of it: a looping model also picks up an earlier reply's tail
        for sentence in _SENTENCE_BREAK.split(reply):
            before = " ".join(words(sentence)[:CHECK_WORDS])
            if len(said) >= 3 and before and difflib.SequenceMatcher(None, opening, before).ratio() >= SAME_START:
                return True
    return False


def _recites(said: list[str], system_prompt: str) -> bool:
    """RECITAL_WORDS words in a row of `said` are words of the system prompt, in its order."""
    prompt = f" {' '.join(words(system_prompt))} "
    return any(f" {' '.join(said[i:i + RECITAL_WORDS])} " in prompt for i in range(len(said) - RECITAL_WORDS + 1))


def problem(text: str, system_prompt: str, earlier: list[str], language: str | None = None) -> str | None:
    """Why the opening of an answer is unusable, or None."""
    said = words(text)
    if not said:
        return "nothing speakable"
    if language in _COMMON:
        counts = {code: sum(w in common for w in said) for code, common in _COMMON.items()}
        if max(counts.values()) >= 2 and max(counts, key=lambda c: counts[c]) != language:
            return "it answers in another language"
    if _recites(said, system_prompt):
        return "it recites the system prompt"
    if _repeats(said, earlier):
        return "it repeats an earlier reply"
    return None


class LaterSentences:
    """After a good opening the answer stops before a later sentence that repeats a sentence of an
    earlier reply (a follow-up question got the painter's biography again) or reads the system
    prompt back ("Thank you." -> "I'm glad to help. ... You're a helpful voice assistant."). Each
    later sentence is held until it ends (the voice speaks whole sentences after the first chunk
    anyway); the first one was judged by `problem`."""

    def __init__(self, earlier: list[str], system_prompt: str = "") -> None:
        self.earlier = earlier
        self.system_prompt = system_prompt
        self.pending = ""  # a sentence not judged yet
        self.judged = True  # the sentence being passed through was judged (the first: by `problem`)
        self.done = False

    def feed(self, text: str) -> str:
        """What may be said of `text` now."""
        out = ""
        while text and not self.done:
            end = _SENTENCE_END.search(text)
            if self.judged:
                if end is None or not (self.earlier or self.system_prompt):
                    return out + text
                out, text, self.judged = out + text[:end.end()], text[end.end():], False
                continue
            cut = end.end() if end else len(text)
            self.pending, text = self.pending + text[:cut], text[cut:]
            if end is not None:
                out += self._judge()
        return out

    def flush(self) -> str:
        """The end of the answer: a last sentence without its full stop is judged as it is."""
        return "" if self.done or self.judged or not words(self.pending) else self._judge()

    def _judge(self) -> str:
        pending, self.pending = self.pending, ""
        said = words(pending)
        if _repeats(said, self.earlier) or _recites(said, self.system_prompt):
            self.done = True
            return ""
        self.judged = True
        return pending


class SentenceLimit:
    """Passes text through until `limit` sentences have ended (0: no limit); then says it is done."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.ended = 0
        self.done = False

    def feed(self, text: str) -> str:
        if self.done:
            return ""
        if not self.limit:
            return text
        for match in _SENTENCE_END.finditer(text):
            self.ended += 1
            if self.ended >= self.limit:
                self.done = True
                return text[:match.end()]
        return text


_WHEN_OR_WHERE = re.compile(
    r"\b(date|day|days|year|month|week|today|tomorrow|yesterday|season|where|"
    r"aujourd'hui|jour|jours|année|mois|semaine|demain|hier|saison|où)\b", re.IGNORECASE)


def asks_when_or_where(question: str) -> bool:
    """The question is about the date or the place: then, and only then, the prompt carries them."""
    return bool(_WHEN_OR_WHERE.search(question))


def today(language: str | None, time_zone: str | None) -> str:
    """"Today is Monday, 30 November 2026." in the answer's language: a small model otherwise invents it."""
    now = dt.datetime.now(ZoneInfo(time_zone)) if time_zone else dt.datetime.now().astimezone()
    if language == "fr":
        return f"Nous sommes le {format_date(now, format='full', locale='fr')}."
    return f"Today is {format_date(now, format='full', locale='en')}."
