"""A muted microphone under the real daemon, on the virtual audio server (issue 14).

A muted input gives exact zeros. Before, it was declared lost and reopened every
audio.dead_input_s, forever, with a warning each time; now it is reopened once, said to be
silent once, listened to, and what is said after unmuting is answered.
"""
from __future__ import annotations

import time

import pytest
from audio_harness import AssistantProcess

pytestmark = pytest.mark.e2e
DEAD_INPUT_S = 1.0
MIC = "vmic_feed.monitor"  # the source behind the ALSA device vmic (scripts/virtual_audio.sh)


def test_a_muted_microphone_is_said_silent_once_and_heard_again_once_unmuted(virtual_audio, question):
    luxa = AssistantProcess(virtual_audio.env, "--set", f"audio.dead_input_s={DEAD_INPUT_S}")
    try:
        luxa.wait_for("LUXA is listening")
        luxa.wait_for("microphone open", timeout=30)
        virtual_audio.pactl("set-source-mute", MIC, "1")
        luxa.wait_for("still listening", timeout=30)
        said = len(luxa.lines)
        time.sleep(5 * DEAD_INPUT_S)  # before: five more reopens, five more warnings
        later = [line for line in luxa.lines[said:] if "digital silence" in line or "microphone open" in line]
        virtual_audio.pactl("set-source-mute", MIC, "0")
        virtual_audio.play_into_mic(question).wait(timeout=30)
        heard = luxa.wait_for(r"^you: ", timeout=60)
        luxa.wait_for(r"^luxa: ", timeout=90)
    finally:
        luxa.stop(timeout=30)
        luxa.kill()
    assert later == [], later
    assert "lamp" in heard.lower() or "living" in heard.lower(), heard
