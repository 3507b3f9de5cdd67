"""Text preparation: what reaches the voice, and clear errors for what cannot be spoken."""
from __future__ import annotations

import os

import pytest

from Core.errors import LuxaError
from TTS.text import TextInputError, sanitize, split_for_synthesis


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


def test_long_text_is_split_at_sentences_within_max_chars():
    text = " ".join(f"Sentence number {w} is here." for w in ["one", "two", "three", "four", "five", "six"])
    pieces = split_for_synthesis(text, 60)
    assert all(len(p) <= 60 for p in pieces) and len(pieces) > 1
    assert " ".join(pieces) == text


def test_an_over_long_sentence_is_cut_at_clauses_then_words():
    sentence = "first part of it, " + "word " * 40 + "end."
    pieces = split_for_synthesis(sentence, 50)
    assert pieces[0] == "first part of it,"
    assert all(len(p) <= 50 for p in pieces)
    assert " ".join(pieces).split() == sentence.split()
