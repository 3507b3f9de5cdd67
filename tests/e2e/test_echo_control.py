"""The control for tests/e2e/test_echo.py: in `headset` mode (no echo cancellation) the assistant,
on the same speakers, interrupts itself with its own voice. The rig can make that happen, so its
silence in `aec` mode means something."""
from __future__ import annotations

import pytest
from audio_harness import have_pulseaudio, have_sox
from bench_echo import Rig

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not (have_pulseaudio() and have_sox()),
                                                  reason="needs PulseAudio and sox (scripts/setup.sh)")]


def test_without_echo_cancellation_its_own_voice_interrupts_the_reply(room, question, tmp_path):
    rig = Rig(room, "headset", tmp_path)
    try:
        fired = rig.solo_reply(question, settle=False)  # the rig closes next: no reply to its own voice to wait out
    finally:
        rig.close()
    assert fired, "headset mode on speakers should hear its own voice as an interruption"
