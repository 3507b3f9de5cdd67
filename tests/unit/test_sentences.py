"""One sentence splitter (Core.sentences): streamed LLM output (short first chunk, then sentences, no false
cuts) and whole texts cut to a length an engine reads well."""
from __future__ import annotations

import pytest

from Core.sentences import SentenceChunker, split_clauses, split_for_synthesis, split_sentences


def stream(text: str, max_words: int = 6, piece: int = 3) -> list[str]:
    """Feed text in small pieces, as an LLM does, and collect every chunk."""
    chunker = SentenceChunker(max_words)
    chunks: list[str] = []
    for i in range(0, len(text), piece):
        chunks += chunker.feed(text[i:i + piece])
    return chunks + chunker.flush()


def test_first_chunk_is_cut_at_the_first_clause_boundary():
    chunks = stream("Sure, the weather today is sunny. It will rain tomorrow.")
    assert chunks == ["Sure,", "the weather today is sunny.", "It will rain tomorrow."]


def test_first_chunk_is_cut_after_max_words_when_no_clause_comes():
    chunks = stream("The quick brown fox jumps over the lazy dog near the river. Then it sleeps.", max_words=4)
    assert chunks == ["The quick brown fox", "jumps over the lazy dog near the river.", "Then it sleeps."]


def test_only_the_first_chunk_is_cut_at_clauses():
    chunks = stream("Yes. Well, later sentences keep their commas, colons: and dashes - intact.")
    assert chunks == ["Yes.", "Well, later sentences keep their commas, colons: and dashes - intact."]


@pytest.mark.parametrize("text", [
    "Pi is 3.14 and e is 2.71 today.",
    "It costs 1,000 dollars or 2,500.50 euros.",
])
def test_numbers_are_never_split(text):
    assert stream(text, max_words=50) == [text]


@pytest.mark.parametrize("text", [
    "Dr. Smith met Mr. Jones at St. Paul's church.",
    "Bring fruit, e.g. apples or pears, and so on.",
    "The U.S. Army and the U.K. navy agreed.",
    "J. R. R. Tolkien wrote it.",
])
def test_abbreviations_and_initials_do_not_end_a_sentence(text):
    assert split_sentences(text) == [text]


def test_urls_and_emails_are_never_split():
    text = "See https://docs.example.com/v1.2/index.html or write to jo.doe@mail.example.org today. Thanks!"
    assert stream(text, max_words=50) == [
        "See https://docs.example.com/v1.2/index.html or write to jo.doe@mail.example.org today.", "Thanks!"]


def test_a_full_stop_is_held_until_the_next_word_shows_it_ends_a_sentence():
    chunker = SentenceChunker(first_chunk_max_words=50)
    assert chunker.feed("It was approx. ") == []  # abbreviation: wait, do not cut
    assert chunker.feed("ten metres. ") == []  # "metres." could still be followed by lower case
    assert chunker.feed("Then") == ["It was approx. ten metres."]
    assert chunker.flush() == ["Then"]


def test_question_and_exclamation_marks_and_newlines_end_sentences():
    assert split_sentences("Really? Yes! First item\nSecond item") == ["Really?", "Yes!", "First item", "Second item"]


def test_closing_quotes_stay_with_their_sentence():
    assert split_sentences('He said "stop." Then he left.') == ['He said "stop."', "Then he left."]


def test_chunks_without_letters_or_digits_are_dropped():
    assert stream("Hello!\n---\n** Done.", max_words=50) == ["Hello!", "** Done."]


def test_flush_resets_for_the_next_answer():
    chunker = SentenceChunker(2)
    assert chunker.feed("one two three") == ["one two"]
    assert chunker.flush() == ["three"]
    assert chunker.feed("again, ") == ["again,"]  # a new answer gets a short first chunk again


def test_split_clauses_cuts_at_commas_semicolons_colons_and_dashes():
    assert split_clauses("a b, c d; e f: g h - i j") == ["a b,", "c d;", "e f:", "g h -", "i j"]


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
