"""Turn model output into text a voice can say, piece by piece as it streams.

Small models write markdown, emoji and (reasoning models) `<think>` blocks even when told not
to. Text-to-speech would read "asterisk" or a whole chain of thought aloud, so the cleaner drops
them. It works on a stream: a marker split across two pieces (`<thi` + `nk>`) is held back until
it is known, so nothing that should be removed is ever emitted early.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE, FENCE = "<think>", "</think>", "```"
# A markdown link or image still being written: "[text", "[text]", "[text](url" (no closing ")").
_OPEN_LINK = re.compile(r"!?\[[^\]\n]*(\](\([^)\s]*)?)?$")
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\s]*\)")
_BULLET = re.compile(r"(?m)^[ \t]*(?:[-+]|>+)[ \t]+")  # list bullets and quote marks
_LINE_HEAD = re.compile(r"(?:^|\n)[ \t]*(?:[-+]|>+)?$")  # could still become a bullet
_MARKUP = re.compile(r"[*`#|]|~~|__|(?<!\w)_|_(?!\w)")
_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\U0001F1E6-\U0001F1FF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D\u20E3]"
)
_SPACES = re.compile(r"\s+")


@dataclass
class SpeechCleaner:
    """Feed raw pieces, get speakable text; call flush() once at the end of the answer."""

    max_held_chars: int = 200  # a "[" that never becomes a link must not hold speech back forever
    _buffer: str = ""
    _in_think: bool = False
    _in_fence: bool = False
    _line_start: bool = True
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
        """How much of `text` can go out now: all but a possible marker or link in progress."""
        held = _partial_marker_length(text)
        head = _LINE_HEAD.search(text)
        if head:
            held = max(held, len(text) - head.start())
        link = _OPEN_LINK.search(text)
        if link and len(text) - link.start() <= self.max_held_chars:
            held = max(held, len(text) - link.start())
        return len(text) - held

    def _speakable(self, text: str) -> str:
        if not text:
            return ""
        if self._line_start:
            text = "\n" + text  # lets the bullet pattern see a line start from a previous piece
        self._line_start = text.endswith("\n")
        text = _LINK.sub(r"\1", text)
        text = text.replace(THINK_CLOSE, "")  # a stray closer (the template opened the block)
        text = _BULLET.sub("", text)
        text = _EMOJI.sub("", _MARKUP.sub("", text))
        text = _SPACES.sub(" ", text)
        if self._emitted_space:
            text = text.lstrip(" ")
        if text:
            self._emitted_space = text.endswith(" ")
        return text


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


def clean_for_speech(text: str) -> str:
    """The whole-text form, for replies that arrive in one piece."""
    cleaner = SpeechCleaner()
    return (cleaner.feed(text) + cleaner.flush()).strip()
