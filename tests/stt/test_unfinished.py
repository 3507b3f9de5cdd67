"""The words' half of the end of turn: a transcript that stops mid-phrase holds the turn open."""
from __future__ import annotations

import pytest

from Core.audio import STT_RATE
from STT.unfinished import sounds_unfinished
from STT.vad import Endpointer
from tests.stt.test_endpointer import FRAME_MS, ScriptedDetector, frames
from tests.stt.test_turn_model import LOGIC, InstantJudge


@pytest.mark.parametrize(("text", "language"), [
    ("Turn on the", "en"), ("Turn on the.", "en"), ("What is the capital of", "en"), ("However,", "en"),
    ("I want to...", "en"), ("Set a timer for five minutes and", "en"), ("Allume la", "fr"),
    ("Quelle est la capitale de", "fr"), ("Il pleut parce qu'", "fr"),
])
def test_a_transcript_cut_mid_phrase_sounds_unfinished(text, language):
    assert sounds_unfinished(text, language)


@pytest.mark.parametrize(("text", "language"), [
    ("Turn on the living room light.", "en"), ("Turn the light on", "en"), ("Tell me more", "en"),
    ("I think so.", "en"), ("What time is it?", "en"), ("Quelle heure est-il ?", "fr"), ("", "en"),
    ("...", "en"), ("Stop", None),
])
def test_a_finished_sentence_does_not(text, language):
    assert not sounds_unfinished(text, language)


def ends_after(words_at: int | None, unfinished: bool = True, p: float = 0.95, wait: bool = True,
               complete: bool = False) -> int | None:
    """Silent frames before the end; the words arrive (words_heard) on silent frame `words_at`."""
    endpointer = Endpointer(LOGIC, STT_RATE, FRAME_MS, detector=ScriptedDetector(), judge=InstantJudge(p),
                            wait_for_words=wait)
    for n, frame in enumerate(frames("S" * 10 + "." * 40)):
        if words_at is not None and n == 10 + words_at:
            endpointer.words_heard(unfinished, complete=complete)
        if any(e.kind == "end" for e in endpointer.process(frame)):
            return n - 9
    return None


def test_words_that_stop_mid_phrase_hold_the_turn_to_the_maximum_silence():
    assert ends_after(None, wait=False) == 3  # not waiting for words, the model is sure: it ends at once
    assert ends_after(1) == 30  # the words stop mid-phrase: turn_max_silence_ms (900 ms) whatever the model says
    assert ends_after(2, p=0.7) == 30


def test_the_turn_ends_once_the_sound_and_the_words_both_say_finished():
    assert ends_after(5, unfinished=False) == 6  # the model was sure at frame 3; the words came on frame 5
    assert ends_after(1, unfinished=False) == 3  # the words first, then the model's sure verdict
    assert ends_after(1, unfinished=False, p=0.7) == 10  # unsure: turn_unsure_silence_ms
    assert ends_after(None) == 30  # words that never come: the maximum silence ends it


def test_a_whole_command_ends_the_turn_when_the_model_is_unsure_but_not_when_it_hears_more():
    assert ends_after(5, unfinished=False, p=0.7, complete=True) == 6  # unsure: ended by the words, not at 10
    assert ends_after(5, unfinished=False, p=0.1, complete=True) == 30  # the voice goes on: the model's wait
    assert ends_after(1, unfinished=True, p=0.7, complete=True) == 30  # mid-phrase words never end it


def test_speech_again_clears_the_hold():
    endpointer = Endpointer(LOGIC, STT_RATE, FRAME_MS, detector=ScriptedDetector(), judge=InstantJudge(0.95))
    events = []
    for n, frame in enumerate(frames("S" * 10 + ".." + "S" * 5 + "." * 40)):
        if n == 11:
            endpointer.words_heard(True)
        events += [(n, e.kind) for e in endpointer.process(frame)]
    ends = [n for n, kind in events if kind == "end"]
    assert ends and ends[0] - 16 == 3, events  # the second pause is judged on its own: sure, at once
