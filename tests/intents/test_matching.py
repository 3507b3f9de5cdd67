"""Text -> intent with Home Assistant's sentences plus LUXA's: the command set, en and fr (>= 95 %)."""
from __future__ import annotations

import pytest

from bench_commands import agrees, command_set


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_command_set_is_understood_as_text(matcher, language):
    rows = command_set(language)
    wrong = [(text, intent, slots, matcher.match(text, language)) for _, text, intent, slots in rows
             if not agrees(matcher.match(text, language), intent, slots)]
    accuracy = 1 - len(wrong) / len(rows)
    print(f"\n{language}: {len(rows) - len(wrong)}/{len(rows)} commands right ({accuracy:.1%})")
    for text, intent, slots, got in wrong:
        print(f"  {text!r}: wanted {intent} {slots}, got {got}")
    assert accuracy >= 0.95


def test_a_question_in_a_language_without_sentences_goes_to_the_llm(matcher):
    assert matcher.match("Wie spät ist es?", "de") is None


def test_an_unknown_device_is_recognised_as_unknown_not_passed_to_the_llm(matcher):
    match = matcher.match("Turn on the garage light", "en")
    assert match is not None and match.intent == "HassTurnOn" and match.unknown == {"area": "garage"}


def test_a_looping_transcript_is_matched_once(matcher):
    looped = "Turn on the kitchen light. Turn on the kitchen light. Turn Turn Turn Turn"
    assert matcher.match(looped, "en").intent == "HassTurnOn"
    assert matcher.match("Stop Stop Stop", "en").intent == "LuxaStop"


def test_a_command_heard_with_the_wrong_language_is_still_matched(matcher):
    """Whisper names the language of a two-word clip badly ("be quiet" as Norwegian)."""
    assert matcher.match("be quiet", "nn").intent == "LuxaStop"
    assert matcher.match("Quelle heure est-il ?", "en").language == "fr"


@pytest.mark.parametrize("text", ["My name is Ada.", "And of Germany?", "What is my name?"])
def test_a_question_that_only_fits_a_bare_name_template_is_not_taken_for_a_device(matcher, text):
    assert matcher.match(text, "en") is None
