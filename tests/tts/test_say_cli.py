"""`run_assistant.py say` as a user runs it: a subprocess writing a real WAV."""
from __future__ import annotations

import json

import pytest

from Core.audio import load_audio, problem

pytestmark = pytest.mark.integration


def test_say_writes_speech_and_reports_json(run_cli, tmp_path, word_error_rate):
    out = tmp_path / "hello.wav"
    text = "Good evening, the lights are now off."
    proc = run_cli("say", text, "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"backend", "latency_ms", "cached", "audio_s"}
    assert report["backend"] == "piper_native" and report["cached"] is False
    audio = load_audio(out)
    assert audio.duration_s == pytest.approx(report["audio_s"], abs=0.01)
    assert word_error_rate(audio, text, "en")[0] < 0.2


def test_say_with_every_real_backend_broken_exits_0_with_silence_and_a_critical_line(run_cli, tmp_path):
    out = tmp_path / "silence.wav"
    proc = run_cli(
        "--set", f"tts.voices.en.piper={tmp_path / 'missing.onnx'}",
        "--set", f"tts.backends.piper_cli.executable={tmp_path / 'no-piper'}",
        "--set", f"tts.backends.system_voice.executable={tmp_path / 'no-espeak-ng'}",
        "say", "Is anybody there?", "-o", str(out), "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["backend"] == "silent_emergency"
    assert "CRITICAL" in proc.stderr and "Traceback" not in proc.stderr
    audio = load_audio(out)
    assert audio.duration_s > 0 and problem(audio.samples) == "audio is silent"


@pytest.mark.parametrize("args,message", [
    (["say", "   ", "-o", "x.wav"], "nothing to say"),
    (["say", "hi", "-o", "x.wav", "--backend", "nope"], "unknown backend 'nope'"),
    (["say", "hi", "-o", "/proc/forbidden/x.wav"], "cannot write"),
])
def test_say_bad_input_gives_one_line_error_and_non_zero_exit(run_cli, args, message):
    proc = run_cli("--set", "tts.backends.piper_native.enabled=false", *args)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("luxa: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in proc.stderr
