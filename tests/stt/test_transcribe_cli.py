"""`run_assistant.py transcribe` as a user runs it: a subprocess on real files."""
from __future__ import annotations

import json

import pytest

from STT.scoring import word_error_rate

pytestmark = pytest.mark.integration
QUIET = ("--log-level", "ERROR")  # so stderr holds only what the command itself reports


def test_json_mode_prints_one_object_per_file_and_reports_bad_files_in_one_line(run_cli, corpus_dir, tmp_path):
    good = corpus_dir / "commands" / "turn_on_the_living_room_lamp.wav"
    opus = corpus_dir / "fleurs" / "fleurs-fr-004.ogg"
    unreadable = tmp_path / "broken.flac"
    unreadable.write_bytes(b"fLaC but nothing else" * 4)
    missing = tmp_path / "missing.wav"
    proc = run_cli("transcribe", str(good), str(missing), str(unreadable), str(opus), "--json", *QUIET)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 2, proc.stderr
    assert errors[0] == f"luxa: error: audio file not found: {missing}"
    assert errors[1].startswith(f"luxa: error: cannot read audio file {unreadable}")
    lines = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert [line["file"] for line in lines] == [str(good), str(opus)], "the good files are still transcribed"
    assert all(set(line) == {"file", "text", "language", "duration_s", "latency_ms"} for line in lines)
    assert word_error_rate(["turn on the living room lamp"], [lines[0]["text"]]) <= 0.2
    assert lines[0]["language"] == "en" and lines[1]["language"] == "fr"
    assert lines[0]["duration_s"] == pytest.approx(2.99, abs=0.01)


def test_plain_mode_prints_file_colon_text_with_a_fixed_language(run_cli, corpus_dir):
    clip = corpus_dir / "commands" / "living_room_light_en.wav"
    proc = run_cli("transcribe", str(clip), "--language", "en", *QUIET)
    assert proc.returncode == 0, proc.stderr
    path, _, text = proc.stdout.strip().partition(": ")
    assert path == str(clip)
    assert word_error_rate(["turn on the living room light"], [text]) <= 0.2


def test_a_missing_file_alone_exits_non_zero_with_one_line(run_cli, tmp_path):
    proc = run_cli("transcribe", str(tmp_path / "nope.wav"), *QUIET)
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"luxa: error: audio file not found: {tmp_path / 'nope.wav'}"]


def test_an_unknown_language_code_is_one_line_error(run_cli, corpus_dir):
    clip = corpus_dir / "commands" / "living_room_light_en.wav"
    proc = run_cli("transcribe", str(clip), "--language", "xx", *QUIET)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"luxa: error: {clip}: unknown language 'xx': use a Whisper language code such as en, fr, de"]
