"""Where text is cut for a voice: the one sentence splitter for streamed answers and whole texts.

The chunker cuts streaming LLM output into pieces a voice can start reading before the answer is
finished; split_for_synthesis cuts a whole text into pieces an engine reads well.

The first piece is cut short (first clause, or the first few words) because the user waits
for it; later pieces end at sentence boundaries because a voice reads a whole sentence with
better prosody. A boundary is only a full stop followed by white space, so "3.14", "1,000",
"example.com" and "jo@mail.org" are never cut; known abbreviations and initials are skipped.
"""
from __future__ import annotations

import re

from Core.text import speakable

# Words whose trailing full stop does not end a sentence even before a capital ("Dr. Smith").
ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "no", "nos", "fig", "approx",
    "dept", "est", "inc", "ltd", "co", "corp", "gen", "gov", "sgt", "capt", "lt", "col", "rev",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "mme", "mlle", "mm", "cf", "ca", "vol", "ed", "al",
})
_CLOSERS = "\"'”’»)]"
_CLOSER_CLASS = "[" + re.escape(_CLOSERS) + "]"
# end punctuation, closing quotes/brackets, the white space after, and a peek at what follows
_SENTENCE_END = re.compile(rf"([.!?…]+)({_CLOSER_CLASS}*)(\s+)(?=(\S)?)")
_NEWLINE = re.compile(r"\n\s*")
_CLAUSE_END = re.compile(rf"(?:[,;:]{_CLOSER_CLASS}*\s+|\s+[-–—]+\s+)")
_INITIALISM = re.compile(r"(?:[a-z]\.)+[a-z]")


def _is_sentence_end(buf: str, m: re.Match, final: bool) -> bool | None:
    """True/False, or None when the next character has not arrived yet and it matters."""
    punct, following = m.group(1), m.group(4)
    if "!" in punct or "?" in punct:
        return True
    word = buf[: m.start(1)].rsplit(None, 1)[-1] if buf[: m.start(1)].strip() else ""
    core = word.lstrip(_CLOSERS + "(\"'“‘«").lower()
    if punct == "." and (core in ABBREVIATIONS or len(core) == 1 and core.isalpha() or _INITIALISM.fullmatch(core)):
        return False
    if following is None:
        return True if final else None
    return not following.islower()  # "e.g. this", "approx. ten": a lower-case word continues


def _sentence_cut(buf: str, final: bool = False) -> int | None:
    """Index just after the first sentence boundary in buf, or None."""
    candidates = []
    for m in _SENTENCE_END.finditer(buf):
        verdict = _is_sentence_end(buf, m, final)
        if verdict is None:
            break  # wait for the next piece rather than guess
        if verdict:
            candidates.append(m.end(3))
            break
    newline = _NEWLINE.search(buf)
    if newline and buf[: newline.start()].strip():
        candidates.append(newline.end())
    return min(candidates) if candidates else None


def _clause_cut(buf: str) -> int | None:
    m = _CLAUSE_END.search(buf)
    return m.end() if m and buf[: m.start()].strip() else None


def _word_cut(buf: str, max_words: int) -> int | None:
    m = re.match(rf"\s*(?:\S+\s+){{{max_words}}}", buf)
    return m.end() if m else None


class SentenceChunker:
    """feed() LLM pieces as they arrive; each call returns the chunks completed so far.

    first_chunk_max_words=None turns the short first chunk off (plain sentence splitting).
    """

    def __init__(self, first_chunk_max_words: int | None = 6) -> None:
        self.first_chunk_max_words = first_chunk_max_words
        self._buffer = ""
        self._first_pending = first_chunk_max_words is not None

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        chunks: list[str] = []
        while (cut := self._next_cut()) is not None:
            chunk, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            self._emit(chunk, chunks)
        return chunks

    def flush(self) -> list[str]:
        """The end of the answer: whatever is left is the last chunk."""
        chunks: list[str] = []
        while (cut := _sentence_cut(self._buffer, final=True)) is not None and cut < len(self._buffer):
            chunk, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            self._emit(chunk, chunks)
        self._emit(self._buffer.strip(), chunks)
        self._buffer = ""
        self._first_pending = self.first_chunk_max_words is not None
        return chunks

    def _next_cut(self) -> int | None:
        cuts = [_sentence_cut(self._buffer)]
        max_words = self.first_chunk_max_words
        if self._first_pending and max_words is not None:
            cuts += [_clause_cut(self._buffer), _word_cut(self._buffer, max_words)]
        found = [c for c in cuts if c is not None]
        return min(found) if found else None

    def _emit(self, chunk: str, out: list[str]) -> None:
        if speakable(chunk):  # a lone "—" or "**" is not worth a synthesis
            out.append(chunk)
            self._first_pending = False


def split_sentences(text: str) -> list[str]:
    chunker = SentenceChunker(first_chunk_max_words=None)
    return chunker.feed(text) + chunker.flush()


def split_clauses(text: str) -> list[str]:
    """Sentences cut further at commas, semicolons, colons and dashes (for over-long sentences)."""
    out: list[str] = []
    for sentence in split_sentences(text):
        rest = sentence
        while (cut := _clause_cut(rest)) is not None:
            out.append(rest[:cut].strip())
            rest = rest[cut:]
        if rest.strip():
            out.append(rest.strip())
    return out


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
