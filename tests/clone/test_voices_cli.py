"""The `voices` command and `say --voice ID` as a user runs them, on the tiny random Qwen3-TTS model."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.integration]


def test_cli_create_list_say_delete(run_cli, config_file, reference, tmp_path):
    path, text = reference
    created = run_cli("--config", str(config_file), "voices", "create", str(path), "--text", text)
    assert created.returncode == 0, created.stderr
    voice = created.stdout.strip()
    assert len(voice) == 36 and "similarity" in created.stderr
    listed = run_cli("--config", str(config_file), "voices", "list")
    assert voice in listed.stdout and "0.6B" in listed.stdout
    out = tmp_path / "cloned.wav"
    said = run_cli("--config", str(config_file), "say", "Hello from the clone.", "--voice", voice, "-o", str(out))
    assert said.returncode == 0 and "qwen_clone" in said.stdout, said.stderr
    import soundfile

    samples, rate = soundfile.read(out)
    assert rate == 24000 and np.max(np.abs(samples)) > 0.01
    deleted = run_cli("--config", str(config_file), "voices", "delete", voice)
    assert deleted.returncode == 0
    again = run_cli("--config", str(config_file), "voices", "delete", voice)
    assert again.returncode == 1 and again.stderr.strip().startswith("luxa: error: unknown voice")


def test_cli_refuses_a_too_short_reference_in_one_line(run_cli, config_file, tmp_path, reference_audio):
    from Core.audio import Audio, write_wav

    short = tmp_path / "short.wav"
    write_wav(short, Audio(reference_audio.samples[: reference_audio.sample_rate], reference_audio.sample_rate))
    result = run_cli("--config", str(config_file), "voices", "create", str(short), "--text", "All nouns.")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("luxa: error: reference")
    assert "give at least 3 s" in result.stderr
