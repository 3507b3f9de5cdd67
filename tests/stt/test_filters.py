"""The hallucination filter: subtitle credits vanish, decoding loops are garbage, speech survives."""
import pytest

from STT.filters import garbage_reason, normalise, strip_hallucinations

WORDS, CHARS = 8, 15


@pytest.mark.parametrize("text", [
    "Thanks for watching!",
    "Thank you for watching.",
    "Sous-titrage ST' 501",
    "Sous-titres réalisés para la communauté d'Amara.org",
    "Subtitles by the Amara.org community",
    "Merci d'avoir regardé cette vidéo !",
])
def test_subtitle_credits_heard_over_silence_become_empty_text(text):
    assert strip_hallucinations(text) == ""


def test_a_credit_after_real_speech_is_cut_and_the_speech_kept():
    assert strip_hallucinations("Turn on the light. Thanks for watching!") == "Turn on the light."


@pytest.mark.parametrize("text", [
    "Turn on the living room lamp.",
    "Thanks for watching the kids yesterday.",
    "Comment t'appelles-tu ?",
])
def test_ordinary_speech_passes_the_filter_unchanged(text):
    assert strip_hallucinations(text) == text
    assert garbage_reason(text, WORDS, CHARS) is None


@pytest.mark.parametrize("text", [
    "a" * 40,
    "Ha" + "!" * 30,
    " ".join(["the"] * 12),
    "I'm going to go. " * 12,
    "Okay, okay, okay, okay, okay, okay, okay, okay, okay, okay.",
])
def test_decoding_loops_are_reported_as_garbage(text):
    assert garbage_reason(text, WORDS, CHARS)


def test_a_few_repeated_words_are_still_speech():
    assert garbage_reason("no no no, stop stop", WORDS, CHARS) is None


def test_normalise_lowercases_strips_punctuation_and_collapses_spaces():
    assert normalise("  L'Accident,  a eu   LIEU « ici » !") == "l accident a eu lieu ici"


def test_a_whole_short_utterance_written_twice_is_kept_once():
    from STT.filters import collapse_repeated_utterance

    lamp = "Turn on the living room lamp."
    assert collapse_repeated_utterance(f"{lamp} {lamp}") == lamp
    assert collapse_repeated_utterance(f"{lamp} {lamp} Turn on the living") == lamp  # a cut third copy
    assert collapse_repeated_utterance(lamp) == lamp
    assert collapse_repeated_utterance("Stop, stop.") == "Stop, stop."  # one sentence: left alone
    said = "Turn on the lamp. Turn on the light."
    assert collapse_repeated_utterance(said) == said  # two different sentences
    assert collapse_repeated_utterance("Turn on the lamp. Turn") == "Turn on the lamp. Turn"  # no whole copy
    assert collapse_repeated_utterance("") == ""
