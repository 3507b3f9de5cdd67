"""Core.clock.SampleClock: blocks laid end to end whatever their callbacks' times say; slow drift
followed a sample at a time; a real break (a lasting shift, a new stream) re-anchors."""
from __future__ import annotations

import numpy as np

from Core.clock import SampleClock

RATE = 16000
BLOCK = 640  # 40 ms


def lay(clock: SampleClock, reported: list[float]) -> np.ndarray:
    return np.array([clock.place(round(t * RATE), BLOCK) for t in reported])


def test_jitter_and_pulseaudios_sawtooth_leave_the_blocks_end_to_end():
    rng = np.random.default_rng(1)
    n = 2000  # 80 s
    true = 100.0 + np.arange(n) * BLOCK / RATE
    sawtooth = 0.012 - 0.024 * ((np.arange(n) * BLOCK / RATE) % 4.3) / 4.3  # PulseAudio's latency estimate
    late = np.where(rng.random(n) < 0.02, rng.uniform(0.05, 0.25, n), 0.0)  # a loaded machine: single late blocks
    clock = SampleClock(jump=960, restart=8000)
    starts = lay(clock, list(true + sawtooth + rng.normal(0, 0.005, n) + late))
    assert clock.anchors == 1
    assert np.all(np.abs(np.diff(starts) - BLOCK) <= 1)  # never a jump
    assert np.max(np.abs(starts / RATE - true)) < 0.02


def test_slow_drift_is_followed_one_sample_at_a_time():
    n = 3000  # 120 s of a device clock 0.04 % slow against the monotonic clock
    reported = 5.0 + np.arange(n) * BLOCK / RATE * 1.0004
    clock = SampleClock(jump=960, restart=8000)
    starts = lay(clock, list(reported))
    assert clock.anchors == 1
    assert np.all(np.abs(np.diff(starts) - BLOCK) <= 1)
    assert abs(starts[-1] / RATE - reported[-1]) < 0.01  # 48 ms of drift, caught up to within the dead band


def test_a_lasting_shift_reanchors_within_a_second_and_a_new_stream_at_once():
    clock = SampleClock(jump=960, restart=8000)
    t = [i * BLOCK / RATE for i in range(50)]
    lay(clock, t)
    shifted = [t[-1] + 0.1 + (i + 1) * BLOCK / RATE for i in range(50)]  # an underrun: 100 ms of silence played
    starts = lay(clock, shifted)
    assert clock.anchors == 2
    settled = int(np.argmax(np.abs(starts / RATE - np.array(shifted)) < 0.002))
    assert 0 < settled <= 25  # within a second of blocks, not on the first late one
    assert clock.place(round((shifted[-1] + 3.0) * RATE), BLOCK) == round((shifted[-1] + 3.0) * RATE)
    assert clock.anchors == 3


def test_in_silence_the_timeline_settles_on_the_mean_at_once_and_then_slews_no_more():
    # the anchor block came 20 ms late (PulseAudio's sawtooth at its peak): the mean is 20 ms earlier
    true = [i * BLOCK / RATE for i in range(200)]
    reported = [t + (0.02 if i == 0 else 0.0) for i, t in enumerate(true)]
    quiet, loud = SampleClock(jump=960, restart=8000), SampleClock(jump=960, restart=8000)
    settled = np.array([quiet.place(round(t * RATE), BLOCK, quiet=True) for t in reported[:50]])
    slewed = lay(loud, reported[:50])
    assert abs(settled[-1] / RATE - true[49]) <= 0.005  # within the dead band after 2 s of silence
    assert abs(slewed[-1] / RATE - true[49]) > 0.01  # one sample per block: still most of the 20 ms off
    # then a reply plays: end to end from where the silence left the timeline
    playing = np.array([quiet.place(round(t * RATE), BLOCK) for t in reported[50:]])
    assert np.all(np.diff(playing) == BLOCK)
    assert quiet.anchors == 1
