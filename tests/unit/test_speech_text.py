"""One cleaner for speech (Core.text): LLM answers streamed in pieces of every size, and text given to say."""
from __future__ import annotations

import os

import pytest

from Core.errors import LuxaError, TextInputError
from Core.text import SpeechCleaner, clean_for_speech, sanitize

SAMPLE = (
    "<think>The user wants a city. Paris?</think># Answer\n"
    "The **capital** of _France_ is `Paris` 😀.\n"
    "- See [the map](https://example.org/map) for more.\n"
    "```python\nprint('not spoken')\n```\n"
    "> Quoted line.\n"
    "That is all 👍"
)
EXPECTED = "Answer. The capital of France is Paris . See the map for more. Quoted line. That is all"


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

def test_markdown_and_html_are_removed_but_their_words_kept():
    text = "## Result\n**Bold** and *italic* with `code`, a [link](https://x.org/a) and <b>tags</b> &amp; more"
    assert sanitize(text) == "Result. Bold and italic with code, a link and tags & more"


def test_list_items_become_sentences():
    assert sanitize("Steps:\n- open the door\n- 2 turns left\n1. done") == "Steps: open the door. 2 turns left. done"


def test_urls_are_read_as_a_person_would_say_them():
    assert sanitize("Go to https://www.example.com/docs/getting-started?x=1#top.") == \
        "Go to example dot com slash docs slash getting started."


def test_emails_are_read_with_at_and_dot():
    assert sanitize("Write to jo.doe@example.org") == "Write to jo.doe at example dot org"


def test_emoji_and_control_characters_are_dropped_numbers_kept():
    assert sanitize("Great 👍🏽 news\x07: 3.14 and 1,000\u200b!") == "Great news : 3.14 and 1,000!"


@pytest.mark.parametrize("text", ["", "   \n\t ", "🎉🎉", "** -- **"])
def test_text_with_nothing_to_say_is_refused_with_one_line(text):
    with pytest.raises(TextInputError) as info:
        sanitize(text)
    assert isinstance(info.value, LuxaError) and "\n" not in str(info.value)


def test_binary_junk_is_refused_clearly():
    with pytest.raises(TextInputError, match="binary"):
        sanitize(os.urandom(64).decode("utf-8", "replace") + "\x00")
    with pytest.raises(TextInputError, match="binary"):
        sanitize(bytes(range(1, 32)).decode("ascii") + "ok")


def test_a_streamed_answer_reads_urls_emails_and_lists_as_say_does():
    text = "See https://www.example.com/docs, mail jo@x.org:\n- one\n- two"
    assert streamed(text, 3) == sanitize(text) == "See example dot com slash docs, mail jo at x dot org: one. two"
