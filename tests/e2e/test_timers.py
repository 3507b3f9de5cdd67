"""Timers through the daemon on the real clock: set by voice, announced on the speaker after a
chime (without cutting anyone off), cancelled by voice, and still ringing after a restart."""
from __future__ import annotations

import time

import numpy as np
import pytest
from audio_harness import AssistantProcess

pytestmark = pytest.mark.e2e
CHIME_HZ = 880.0  # intents.alert_hz


@pytest.fixture(scope="module")
def spoken(run_cli, tmp_path_factory):
    """The commands as speech: LUXA's own Piper voice, through `say`."""
    folder = tmp_path_factory.mktemp("commands")
    clips = {}
    for name, text in {"set5": "Set a timer for five seconds.", "set10": "Set a timer for ten seconds.",
                       "cancel": "Cancel the timer."}.items():
        done = run_cli("say", text, "-o", str(folder / f"{name}.wav"), timeout=120)
        assert done.returncode == 0, done.stderr[-1000:]
        clips[name] = folder / f"{name}.wav"
    return clips


def _start(virtual_audio, state_dir, *expected: str) -> AssistantProcess:
    """The daemon, listening; `expected` lines may come while it starts (a timer due at start-up)."""
    luxa = AssistantProcess(virtual_audio.env, "--set", f"service.state_dir={state_dir}")
    luxa.wait_for_each("LUXA is listening", "microphone open", *expected, timeout=180)
    return luxa


def _ask(virtual_audio, luxa: AssistantProcess, clip, reply: str) -> float:
    """Say `clip`; the time LUXA printed what it heard (the command is carried out right then), once
    it has printed `reply` (after the reply's audio has played)."""
    virtual_audio.play_into_mic(clip).wait(timeout=30)
    luxa.wait_for(r"^you: ", timeout=60)
    heard = time.monotonic()
    luxa.wait_for(reply, timeout=60)
    return heard


def _chime_at(samples: np.ndarray, rate: int = 16000, frame_s: float = 0.05) -> list[float]:
    """Start times of frames whose energy is mostly the chime's pitch."""
    n = int(rate * frame_s)
    times = []
    for start in range(0, len(samples) - n, n):
        frame = samples[start:start + n]
        spectrum = np.abs(np.fft.rfft(frame * np.hanning(n))) ** 2
        freqs = np.fft.rfftfreq(n, 1 / rate)
        band = spectrum[(freqs > CHIME_HZ - 60) & (freqs < CHIME_HZ + 60)].sum()
        if spectrum.sum() > 1e-4 and band / spectrum.sum() > 0.6:
            times.append(start / rate)
    return times


def test_a_spoken_timer_rings_on_the_speaker_and_a_cancelled_one_does_not(virtual_audio, spoken, tmp_path):
    luxa = _start(virtual_audio, tmp_path / "state")
    try:
        speaker = virtual_audio.record(tmp_path / "speaker.wav")
        set_at = _ask(virtual_audio, luxa, spoken["set5"], r"^luxa: Timer set for 5 seconds")
        luxa.wait_for(r"^luxa: Time is up: your timer for 5 seconds is done", timeout=20)
        rang_after = time.monotonic() - set_at
        luxa.wait_for(r"^\[listening\]", timeout=20)  # the chime and the sentence have played
        played = speaker.stop()
        _ask(virtual_audio, luxa, spoken["set5"], r"^luxa: Timer set for 5 seconds")
        _ask(virtual_audio, luxa, spoken["cancel"], r"^luxa: Timer cancelled")
        with pytest.raises(AssertionError, match="no line matching"):
            luxa.wait_for(r"^luxa: Time is up", timeout=8)
    finally:
        luxa.stop()
        luxa.kill()
    assert 4.5 <= rang_after <= 8.0, rang_after  # 5 s from the moment it was set; at most the reply's length late
    chimes = _chime_at(played)
    assert chimes, "no chime on the speaker"
    print(f"\ntimer rang {rang_after:.2f} s after LUXA heard it; chime heard at {chimes[0]:.2f} s of the recording")


def test_a_timer_set_before_a_restart_rings_after_it(virtual_audio, spoken, tmp_path):
    state = tmp_path / "state"
    luxa = _start(virtual_audio, state)
    try:
        _ask(virtual_audio, luxa, spoken["set10"], r"^luxa: Timer set for 10 seconds")
        set_at = time.monotonic()
        assert luxa.stop() == 0
    finally:
        luxa.kill()
    speaker = virtual_audio.record(tmp_path / "speaker.wav")
    luxa = _start(virtual_audio, state, r"^luxa: Time is up: your timer for 10 seconds is done")
    try:
        rang_after = time.monotonic() - set_at
        luxa.wait_for(r"^\[listening\]", timeout=20)
        played = speaker.stop()
    finally:
        luxa.stop()
        luxa.kill()
    assert _chime_at(played), "no chime on the speaker after the restart"
    print(f"\nthe timer set before the restart rang {rang_after:.2f} s after it was set")
