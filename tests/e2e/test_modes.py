"""The other ways in: typed conversation (--text) and one turn from a file (turn -i/-o)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

pytestmark = pytest.mark.e2e


def test_text_mode_answers_two_typed_turns(run_cli):
    done = run_cli("--text", input="What is the capital of France?\nAnd what language do people speak there?\n",
                   timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    replies = [line for line in done.stdout.splitlines() if line.startswith("luxa> ")]
    assert len(replies) == 2, done.stdout
    assert all(len(r) > len("luxa> ") + 3 for r in replies), replies
    assert "paris" in replies[0].lower(), replies[0]


def test_turn_from_a_file_transcribes_answers_and_writes_speech(run_cli, corpus_dir, tmp_path, whisper_base):
    out = tmp_path / "reply.wav"
    done = run_cli("turn", "-i", str(corpus_dir / "commands" / "turn_on_the_living_room_lamp.wav"),
                   "-o", str(out), "--json", timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "lamp" in result["transcript"].lower()
    assert result["reply"]
    for key in ("endpoint", "stt", "llm_first_token", "llm_first_sentence", "tts_first_audio", "first_audio", "total"):
        assert key in result["timings_ms"], (key, result["timings_ms"])
    samples, rate = soundfile.read(str(out), dtype="float32")
    assert rate in (16000, 22050) and len(samples) > rate // 2
    segments, _ = whisper_base.transcribe(samples if rate == 16000 else _to16k(samples, rate), language="en")
    assert " ".join(s.text for s in segments).strip()
    print(f"\nturn timings (ms): {result['timings_ms']}")


def test_turn_on_silence_is_a_clear_error(run_cli, tmp_path):
    silent = tmp_path / "silent.wav"
    soundfile.write(str(silent), np.zeros(32000, np.int16), 16000)
    done = run_cli("turn", "-i", str(silent), "-o", str(tmp_path / "o.wav"), timeout=240)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("luxa: error:")


def test_voice_mode_without_a_microphone_says_so_and_offers_text(run_cli, tmp_path):
    # no user ALSA config (so no virtual devices): on a machine with no sound card, no microphone
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "PULSE_SERVER": ""}
    listed = run_cli("devices", "--json", env=env, timeout=60)
    if any(json.loads(line)["inputs"] > 0 for line in listed.stdout.splitlines()):
        pytest.skip("this machine has a microphone")
    done = run_cli(env=env, timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "microphone" in last or "input device" in last, last
    assert "--text" in last, last


def _to16k(samples, rate):
    from Core.audio import resample

    return resample(samples, rate, 16000)
