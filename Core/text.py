"""Text a voice can say: one cleaner for every LLM answer and every text given to `say` or the API.

Markdown, HTML, emoji, raw URLs and (reasoning models) `<think>` blocks are written for eyes or
for nobody; read aloud they come out as "asterisk asterisk", a minute of letters or a chain of
thought. One set of rules serves the streamed answer and the whole text, so what is printed is
what is heard. Numbers are left alone: every engine here reads "3.14" and "1,000" better than a
rule written here would.

The cleaner works on a stream: a marker, link, tag or word split across two pieces (`<thi` +
`nk>`, `https://exa` + `mple.com`) is held back until it is complete, so the output does not
depend on where the pieces were cut.
"""
from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from Core.errors import TextInputError

# Text whose characters are mostly control/replacement/unassigned code points is not text at
# all (a binary file piped in, a wrong encoding); speaking what survives would be gibberish.
BINARY_JUNK_FRACTION = 0.25

THINK_OPEN, THINK_CLOSE, FENCE = "<think>", "</think>", "```"
_ENDS_SENTENCE = ".!?…:;,"
# What may still be growing at the end of the buffer, and so is held back.
_OPEN_LINK = re.compile(r"!?\[[^\]\n]*(\](\([^)\s]*)?)?$")  # "[text", "[text]", "[text](url"
_OPEN_TAG = re.compile(r"</?[A-Za-z][^<>\n]*$")
_LINE_HEAD = re.compile(r"(?:^|\n)[ \t]*(?:[-+*]|>+|#{1,6}|\d{1,3}[.)]?|[|:\- \t]*)$")  # a bullet, heading, table rule
_PARTIAL_WORD = re.compile(r"\S+$")
# Rules for text known to be complete.
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\s]*\)")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}[-|: \t]*$")
_LINE_PREFIX = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+|>+[ \t]*|[-*+][ \t]+|\d{1,3}[.)][ \t]+)")
_MARKUP = re.compile(r"[*`]|~~|(?<!\w)#+(?!\d)|(?<!\w)_+|_+(?!\w)")
_EMAIL = re.compile(r"\b([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)\b")
_URL = re.compile(r"\b(?:(?:https?|ftp)://|www\.)[^\s<>()\"']+", re.I)
_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U00002B00-\U00002BFF\U0000FE00-\U0000FE0F"
    "\U0001F1E6-\U0001F1FF\U000E0000-\U000E007F\u200d\u20e3]"
)
_SPACES = re.compile(r"\s+")


def heard_text(labels: list[tuple[float, str]], played: float) -> str:
    """What a listener heard of a reply cut off after `played` (samples or seconds, as `labels`):
    every label whose audio ended by then, plus the share of the words of the one playing.
    `labels` holds (where the label's audio ends, the label's text), in order."""
    words: list[str] = []
    start = 0.0
    for end, label in labels:
        if played >= end:
            words.append(label)
        elif played > start:
            share = (played - start) / (end - start)
            cut = label.split()
            words.append(" ".join(cut[: int(len(cut) * share)]))
            break
        start = end
    return " ".join(w for w in words if w).strip()


def speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


@dataclass
class SpeechCleaner:
    """Feed raw pieces, get speakable text; call flush() once at the end of the answer."""

    max_held_chars: int = 200  # a "[" that never becomes a link must not hold speech back forever
    _buffer: str = ""
    _in_think: bool = False
    _in_fence: bool = False
    _line_start: bool = True
    _line_open: bool = False  # the current line has words: a line break after it is a pause
    _last_char: str = ""
    _emitted_space: bool = True  # true at the start so the reply never begins with a space

    def feed(self, piece: str) -> str:
        self._buffer += piece
        return self._drain(final=False)

    def flush(self) -> str:
        """Emit what was held back; an unclosed think block or code fence is dropped."""
        text = self._drain(final=True)
        self._buffer = ""
        return text.rstrip()

    def _drain(self, final: bool) -> str:
        out: list[str] = []
        while True:
            if self._in_think or self._in_fence:
                closer = THINK_CLOSE if self._in_think else FENCE
                end = self._buffer.find(closer)
                if end < 0:
                    # Hidden text is dropped as it comes; keep only a possible partial closer.
                    self._buffer = "" if final else self._buffer[-(len(closer) - 1):]
                    break
                self._buffer = self._buffer[end + len(closer):]
                self._in_think = self._in_fence = False
                continue
            opener = _first_marker(self._buffer)
            if opener is not None:
                index, marker = opener
                out.append(self._speakable(self._buffer[:index]))
                self._buffer = self._buffer[index + len(marker):]
                self._in_think, self._in_fence = marker == THINK_OPEN, marker == FENCE
                continue
            ready_len = len(self._buffer) if final else self._ready_length(self._buffer)
            out.append(self._speakable(self._buffer[:ready_len]))
            self._buffer = self._buffer[ready_len:]
            break
        return "".join(out)

    def _ready_length(self, text: str) -> int:
        """How much of `text` can go out now: all but what may still grow into a rule's match."""
        held = _partial_marker_length(text)
        head = _LINE_HEAD.search(text)
        if head:
            held = max(held, len(text) - head.start())
        for growing in (_OPEN_LINK, _OPEN_TAG, _PARTIAL_WORD):
            found = growing.search(text)
            if found and len(text) - found.start() <= self.max_held_chars:
                held = max(held, len(text) - found.start())
        ready = len(text) - held
        for whole in (_LINK, _HTML_TAG):  # a held word must not cut a finished link or tag in two
            for found in whole.finditer(text, 0, len(text)):
                if found.start() < ready < found.end():
                    ready = found.start()
        return ready

    def _speakable(self, text: str) -> str:
        if not text:
            return ""
        if self._line_start:
            text = "\n" + text  # the line-start rules see a line that began in an earlier piece
        self._line_start = text.endswith("\n")
        text = text.replace(THINK_CLOSE, "")  # a stray closer (the template opened the block)
        out: list[str] = []
        for index, line in enumerate(text.split("\n")):
            if index:
                # Lines become sentences, so list items and headings get a pause instead of running on.
                out.append("." if self._line_open and self._last_char not in _ENDS_SENTENCE else "")
                out.append(" ")
                self._line_open = False
                line = "" if _TABLE_RULE.match(line) else _LINE_PREFIX.sub("", line)
            line = _clean_words(line)
            if line.strip():
                self._line_open, self._last_char = True, line.strip()[-1]
            out.append(line)
        spoken = _SPACES.sub(" ", "".join(out))
        if self._emitted_space:
            spoken = spoken.lstrip(" ")
        if spoken:
            self._emitted_space = spoken.endswith(" ")
        return spoken


def _clean_words(text: str) -> str:
    """The rules for text within one line, once every word in it is complete."""
    text = _without_invisible(unicodedata.normalize("NFC", text))
    text = html.unescape(_HTML_TAG.sub(" ", _LINK.sub(r"\1", text)))
    text = _EMAIL.sub(lambda m: f"{m.group(1)} at {_read_host(m.group(2))}", text)
    text = _URL.sub(lambda m: _read_url(m.group(0)), text)
    text = _MARKUP.sub("", text.replace("|", ", "))
    return _EMOJI.sub(" ", text)


def _first_marker(text: str) -> tuple[int, str] | None:
    found = [(text.find(m), m) for m in (THINK_OPEN, FENCE) if m in text]
    return min(found) if found else None


def _partial_marker_length(text: str) -> int:
    """Length of the longest suffix of `text` that could still grow into a marker."""
    best = 0
    for marker in (THINK_OPEN, THINK_CLOSE, FENCE):
        for size in range(min(len(marker) - 1, len(text)), 0, -1):
            if marker.startswith(text[-size:]):
                best = max(best, size)
                break
    return best


def _without_invisible(text: str) -> str:
    """Zero-width and direction marks vanish; control and invalid characters become a space."""
    kept: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch == "\t" or category not in ("Cc", "Cs", "Co", "Cn", "Cf") and ch != "\ufffd":
            kept.append(ch)
        elif category != "Cf":
            kept.append(" ")
    return "".join(kept)


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


def clean_for_speech(text: str) -> str:
    """The whole-text form, for replies that arrive in one piece."""
    cleaner = SpeechCleaner()
    return (cleaner.feed(text) + cleaner.flush()).strip()


def sanitize(text: str, max_input_chars: int | None = None) -> str:
    """Text given to speak, cleaned; TextInputError when nothing speakable is left or it is too long."""
    if not isinstance(text, str):
        raise TextInputError(f"text to speak must be a string, got {type(text).__name__}")
    if not text.strip():
        raise TextInputError("nothing to say: the text is empty")
    if max_input_chars is not None and len(text) > max_input_chars:
        # long text is split into sentences, but hours of audio are a mistake, not a request
        raise TextInputError(f"text too long to speak: {len(text)} characters (tts.max_input_chars={max_input_chars})")
    _refuse_binary(text)
    text = clean_for_speech(text)
    if not speakable(text):
        raise TextInputError("nothing to say: the text has no letters or digits once markup and symbols are removed")
    return text


def _refuse_binary(text: str) -> None:
    if "\x00" in text:
        raise TextInputError("cannot speak binary data (the text contains NUL bytes)")
    junk = sum(1 for ch in text if ch not in "\n\t" and (ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn")))
    if junk > BINARY_JUNK_FRACTION * len(text):
        raise TextInputError(
            f"cannot speak binary data ({junk} of {len(text)} characters are control or invalid characters)"
        )
