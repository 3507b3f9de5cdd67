"""The product, through real audio: a private PulseAudio server, the assistant as a subprocess."""
from __future__ import annotations

import re
import signal
import time

import jiwer
import numpy as np
import pytest
from audio_harness import AssistantProcess, first_loud, first_quiet_stretch, last_loud

pytestmark = pytest.mark.e2e
BARGE_IN_STOP_MAX_S = 3.0  # barge_in_min_ms + detection + device buffer, with room for loaded CI cores
LONG_REPLY = [
    "--set", "intents.enabled=false",  # the spoken command must reach the storyteller, not the light switch
    "--set", "llm.system_prompt=You are a storyteller. Always answer with a long story of at least eight sentences.",
    "--set", "llm.max_tokens=300",
]


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w' ]", " ", text.lower()).split())


def _transcribe(model, samples: np.ndarray) -> str:
    segments, _ = model.transcribe(samples.astype(np.float32), language="en", beam_size=1)
    return " ".join(s.text for s in segments).strip()


def test_answers_a_spoken_question_with_spoken_audio(virtual_audio, whisper_base, question, tmp_path):
    luxa = AssistantProcess(virtual_audio.env)
    try:
        luxa.wait_for("LUXA is listening")
        speaker = virtual_audio.record(tmp_path / "speaker.wav")
        mic = virtual_audio.record(tmp_path / "mic.wav", device="vmic_feed.monitor")
        time.sleep(0.5)
        virtual_audio.play_into_mic(question).wait(timeout=30)
        heard = luxa.wait_for(r"^you: ", timeout=60)
        reply = luxa.wait_for(r"^luxa: ", timeout=90)
        time.sleep(1.0)
        played, asked = speaker.stop(), mic.stop()
    finally:
        luxa.stop()
        luxa.kill()
    assert any(word in heard.lower() for word in ("lamp", "living room", "light")), heard
    said = _transcribe(whisper_base, played)
    assert said, "the speaker recording holds no intelligible speech"
    printed = reply.removeprefix("luxa: ").split("   [first audio")[0]
    error = jiwer.wer(_words(printed), _words(said))
    assert error <= 0.35, f"the speaker said {said!r}, the assistant printed {printed!r} (WER {error:.2f})"
    end_of_question = last_loud(asked)
    first_reply = first_loud(played, after_s=end_of_question or 0.0)
    assert end_of_question is not None and first_reply is not None
    # both recorders started within milliseconds of each other: same timeline
    print(f"\nreply heard: {said!r}\nassistant said: {reply} (WER {error:.2f})\n"
          f"end of speech -> first reply audio (recorded): {first_reply - end_of_question:.2f} s")


def test_user_speech_interrupts_the_reply_and_starts_a_new_turn(virtual_audio, question, tmp_path, corpus_dir):
    luxa = AssistantProcess(virtual_audio.env, "--set", "audio.barge_in=headset", *LONG_REPLY)
    try:
        luxa.wait_for("LUXA is listening")
        speaker = virtual_audio.record(tmp_path / "speaker.wav")
        mic = virtual_audio.record(tmp_path / "mic.wav", device="vmic_feed.monitor")
        time.sleep(0.5)
        virtual_audio.play_into_mic(question).wait(timeout=30)
        luxa.wait_for(r"^\[speaking\]", timeout=90)
        time.sleep(1.0)  # let the reply play for a while
        interrupt_at = time.monotonic() - speaker.started
        virtual_audio.play_into_mic(corpus_dir / "commands" / "living_room_light_en.wav").wait(timeout=30)
        luxa.wait_for(r"^luxa \(interrupted\)", timeout=30)
        again = luxa.wait_for(r"^you: ", timeout=60)
        played, heard = speaker.stop(), mic.stop()
    finally:
        luxa.stop()
        luxa.kill()
    assert "light" in again.lower() or "living" in again.lower(), again
    before = played[: int(interrupt_at * 16000)]
    assert first_loud(before) is not None, "the reply was not playing before the interruption"
    # after the interruption the speaker must fall silent (a stretch far longer than a pause
    # between words) before the next reply starts
    quiet_from = first_quiet_stretch(played, after_s=interrupt_at, min_s=0.5)
    assert quiet_from is not None, "playback never stopped after the user spoke"
    onset = first_loud(heard, after_s=interrupt_at)
    assert onset is not None
    print(f"\nplayback stopped {quiet_from - onset:.2f} s after the interrupting speech began "
          f"(of which barge_in_min_ms = 0.25 s is by design: shorter sounds do not interrupt)")
    # the long reply had many seconds left: a speaker that went on would be quiet only much later
    assert quiet_from - onset < BARGE_IN_STOP_MAX_S, f"playback went on for {quiet_from - onset:.2f} s after the user spoke"


def test_recovers_when_the_microphone_is_unplugged_and_comes_back(virtual_audio, question):
    luxa = AssistantProcess(virtual_audio.env, "--set", "audio.reconnect_max_s=1.0")
    try:
        luxa.wait_for("LUXA is listening")
        luxa.wait_for("microphone open", timeout=30)
        virtual_audio.unplug_mic()
        luxa.wait_for("microphone (lost|unavailable)", timeout=30)
        time.sleep(1.0)
        virtual_audio.plug_mic()
        luxa.wait_for("microphone open", timeout=30)
        time.sleep(0.5)
        virtual_audio.play_into_mic(question).wait(timeout=30)
        heard = luxa.wait_for(r"^you: ", timeout=60)
        luxa.wait_for(r"^luxa: ", timeout=90)
    finally:
        luxa.stop()
        luxa.kill()
    assert "lamp" in heard.lower() or "living" in heard.lower(), heard


def test_sigterm_while_speaking_exits_zero_promptly(virtual_audio, question):
    luxa = AssistantProcess(virtual_audio.env, *LONG_REPLY)
    try:
        luxa.wait_for("LUXA is listening")
        virtual_audio.play_into_mic(question).wait(timeout=30)
        luxa.wait_for(r"^\[speaking\]", timeout=90)
        time.sleep(1.0)
        sent = time.monotonic()
        rc = luxa.stop(signal.SIGTERM, timeout=20)
        took = time.monotonic() - sent
    finally:
        luxa.kill()
    print(f"\nSIGTERM while speaking -> exit {rc} in {took:.2f} s")
    assert rc == 0
    assert took < 2.0 * 1.5, f"shutdown took {took:.2f} s (target 2 s; 1.5x slack for shared CI cores)"
