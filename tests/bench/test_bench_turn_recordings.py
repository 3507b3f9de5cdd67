"""bench turn reads its virtual-audio latency off two recordings; a reply that began while the user
was still speaking (a false end) is counted apart, not as a turn of zero latency."""
from __future__ import annotations

import numpy as np

from Orchestrator.commands.bench import load_script

RATE = 16000


def _tone(total_s: float, start_s: float, stop_s: float) -> np.ndarray:
    samples = np.zeros(int(total_s * RATE), np.float32)
    t = np.arange(int(start_s * RATE), int(stop_s * RATE))
    samples[t] = 0.3 * np.sin(2 * np.pi * 220 * t / RATE)
    return samples


def test_a_reply_after_the_speech_is_its_latency_and_one_during_it_is_a_false_end():
    read = load_script("bench_turn").read_recordings
    asked = _tone(4.0, 0.5, 1.5)  # the user speaks from 0.5 s to 1.5 s
    assert read(asked, _tone(4.0, 2.0, 3.0), 0.0) == {"recorded_first_audio_ms": 500.0}
    assert read(asked, _tone(4.0, 1.0, 3.0), 0.0) == {"talked_over_user_ms": 500.0}
    # the mic recording started 0.25 s after the speaker's: the same reply is 250 ms sooner
    assert read(asked, _tone(4.0, 2.0, 3.0), 0.25) == {"recorded_first_audio_ms": 250.0}
    assert read(asked, np.zeros(4 * RATE, np.float32), 0.0) == {}
