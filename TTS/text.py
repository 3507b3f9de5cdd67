"""Text preparation: turn what an LLM or a user wrote into something a voice can read.

Markdown, HTML, emoji and raw URLs are written for eyes; read aloud they come out as
"asterisk asterisk" or a minute of letters. Numbers are left alone: every engine here reads
"3.14" and "1,000" better than a rule written in this module would.
"""
from __future__ import annotations

import html
import re
import unicodedata

from Core.errors import LuxaError
from TTS.chunker import split_clauses, split_sentences

# Text whose characters are mostly control/replacement/unassigned code points is not text at
# all (a binary file piped in, a wrong encoding); speaking what survives would be gibberish.
BINARY_JUNK_FRACTION = 0.25

_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U00002B00-\U00002BFF\U0000FE00-\U0000FE0F"
    "\U0001F1E6-\U0001F1FF\U000E0000-\U000E007F\u200d\u20e3]"
)
_CODE_FENCE = re.compile(r"```[^\n]*\n?|~~~[^\n]*\n?")
_MD_IMAGE_OR_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_MD_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|~~|`+)")
_MD_LINE_PREFIX = re.compile(r"^\s{0,3}(#{1,6}\s+|>\s?|[-*+]\s+|\d{1,3}[.)]\s+)", re.M)
_MD_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}.*$", re.M)
_EMAIL = re.compile(r"\b([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)\b")
_URL = re.compile(r"\b(?:(?:https?|ftp)://|www\.)[^\s<>()\"']+", re.I)
_SPACES = re.compile(r"[ \t\f\v]+")
_SENTENCE_END = re.compile(r"[.!?…:;,]$")


class TextInputError(LuxaError):
    """Text that cannot be spoken: empty, only symbols, or binary data."""


def speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def sanitize(text: str, max_input_chars: int | None = None) -> str:
    """Clean text for speech; raises TextInputError when nothing speakable is left or it is too long."""
    if not isinstance(text, str):
        raise TextInputError(f"text to speak must be a string, got {type(text).__name__}")
    if not text.strip():
        raise TextInputError("nothing to say: the text is empty")
    if max_input_chars is not None and len(text) > max_input_chars:
        # long text is split into sentences, but hours of audio are a mistake, not a request
        raise TextInputError(f"text too long to speak: {len(text)} characters (tts.max_input_chars={max_input_chars})")
    text = _drop_invisible(unicodedata.normalize("NFC", text))
    text = _strip_markup(text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)} at {_read_host(m.group(2))}", text)
    text = _URL.sub(lambda m: _read_url(m.group(0)), text)
    text = _EMOJI.sub(" ", text)
    text = _join_lines(text)
    if not speakable(text):
        raise TextInputError("nothing to say: the text has no letters or digits once markup and symbols are removed")
    return text


def split_for_synthesis(text: str, max_chars: int) -> list[str]:
    """Pieces of at most max_chars, cut at sentence, then clause, then word boundaries.

    Long text is split rather than refused: a long answer must still be read out, and engines
    get slower and less stable on very long inputs.
    """
    if len(text) <= max_chars:
        return [text]
    pieces: list[str] = []
    for sentence in split_sentences(text):
        parts = [sentence] if len(sentence) <= max_chars else _split_long(sentence, max_chars)
        for part in parts:
            if pieces and len(pieces[-1]) + 1 + len(part) <= max_chars:
                pieces[-1] = f"{pieces[-1]} {part}"  # fewer, longer pieces sound more natural
            else:
                pieces.append(part)
    return [p for p in pieces if speakable(p)]


def _split_long(sentence: str, max_chars: int) -> list[str]:
    out: list[str] = []
    for clause in split_clauses(sentence):
        if len(clause) <= max_chars:
            out.append(clause)
            continue
        line = ""
        for word in clause.split():
            if line and len(line) + 1 + len(word) > max_chars:
                out.append(line)
                line = ""
            line = f"{line} {word}".strip()
            while len(line) > max_chars:  # one "word" longer than the limit (a hash, junk)
                out.append(line[:max_chars])
                line = line[max_chars:]
        if line:
            out.append(line)
    return out


def _drop_invisible(text: str) -> str:
    if "\x00" in text:
        raise TextInputError("cannot speak binary data (the text contains NUL bytes)")
    kept: list[str] = []
    dropped = 0
    for ch in text:
        category = unicodedata.category(ch)
        if ch in "\n\t":
            kept.append(ch)
        elif category in ("Cc", "Cs", "Co", "Cn") or ch == "\ufffd":
            dropped += 1
            kept.append(" ")
        elif category == "Cf":
            kept.append("")  # zero-width joiners, direction marks: invisible, never spoken
        else:
            kept.append(ch)
    if dropped > BINARY_JUNK_FRACTION * len(text):
        raise TextInputError(
            f"cannot speak binary data ({dropped} of {len(text)} characters are control or invalid characters)"
        )
    return "".join(kept)


def _strip_markup(text: str) -> str:
    text = _CODE_FENCE.sub("\n", text)
    text = _MD_IMAGE_OR_LINK.sub(r"\1", text)
    text = _HTML_TAG.sub(" ", text)
    text = html.unescape(text)
    text = _MD_TABLE_RULE.sub("", text)
    text = _MD_LINE_PREFIX.sub("", text)
    text = text.replace("|", ", ")
    return _MD_EMPHASIS.sub("", text)


def _read_host(host: str) -> str:
    return " dot ".join(part for part in host.split(".") if part)


def _read_url(url: str) -> str:
    """https://www.example.com/docs?x=1 -> "example dot com slash docs": what a person would say."""
    trailing = ""
    while url and url[-1] in ".,;:!?":
        trailing = url[-1] + trailing
        url = url[:-1]
    rest = re.sub(r"^(?:(?:https?|ftp)://)?(?:www\.)?", "", url, flags=re.I)
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    host, _, path = rest.partition("/")
    host = host.split(":")[0].split("@")[-1]
    words = [_read_host(host)] + [seg.replace("-", " ").replace("_", " ") for seg in path.split("/") if seg]
    return " slash ".join(words) + trailing


def _join_lines(text: str) -> str:
    """Lines become sentences, so list items and headings get a pause instead of running on."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    joined = [line if _SENTENCE_END.search(line) or i == len(lines) - 1 else line + "." for i, line in enumerate(lines)]
    return " ".join(joined)
