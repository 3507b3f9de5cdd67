"""Output cleaning for speech, whole and streamed in pieces of every size."""
from __future__ import annotations

import pytest

from LLM.clean import SpeechCleaner, clean_for_speech

SAMPLE = (
    "<think>The user wants a city. Paris?</think># Answer\n"
    "The **capital** of _France_ is `Paris` 😀.\n"
    "- See [the map](https://example.org/map) for more.\n"
    "```python\nprint('not spoken')\n```\n"
    "> Quoted line.\n"
    "That is all 👍"
)
EXPECTED = "Answer The capital of France is Paris . See the map for more. Quoted line. That is all"


def streamed(text: str, size: int) -> str:
    cleaner = SpeechCleaner()
    out = [cleaner.feed(text[i:i + size]) for i in range(0, len(text), size)]
    return ("".join(out) + cleaner.flush()).strip()


def test_whole_text_loses_markdown_emoji_code_and_thinking():
    assert clean_for_speech(SAMPLE) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11])
def test_streamed_pieces_of_any_size_clean_the_same_as_the_whole_text(size):
    assert streamed(SAMPLE, size) == EXPECTED


def test_a_think_block_split_across_pieces_is_never_emitted():
    cleaner = SpeechCleaner()
    emitted = [cleaner.feed(p) for p in ["Sure. <th", "ink>secret plan", " more secret</th", "ink> Done."]]
    emitted.append(cleaner.flush())
    assert "secret" not in "".join(emitted)
    assert "".join(emitted) == "Sure. Done."


def test_text_that_only_looks_like_a_marker_start_is_emitted():
    assert streamed("3 < 4 and a [note] here", 1) == "3 < 4 and a [note] here"


def test_an_unclosed_think_block_at_the_end_is_dropped():
    assert clean_for_speech("Yes. <think>still thinking") == "Yes."


def test_snake_case_words_keep_their_letters():
    assert clean_for_speech("set max_tokens please") == "set max_tokens please"
