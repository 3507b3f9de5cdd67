"""`run_assistant.py bench`: the smallest whole-turn run reports every figure; bad input is one line.

No figure is compared with a target here: timings on shared CI cores vary too much. What is
checked is that each path answered and that every figure the docs quote is present.
"""
from __future__ import annotations

import json

import pytest
from audio_harness import have_pulseaudio

MARKS = ("endpoint", "stt", "llm_first_token", "llm_first_sentence", "tts_first_audio", "first_audio", "total")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.e2e
def test_bench_turn_on_one_clip_reports_luxa_both_baselines_and_the_virtual_audio_run(run_cli, tmp_path):
    if not have_pulseaudio():
        pytest.fail("PulseAudio tools missing: run `bash scripts/setup.sh --test`")
    out, png = tmp_path / "bench.json", tmp_path / "latency.png"
    done = run_cli("bench", "turn", "--clips", "1", "--json", str(out), "--plot", str(png), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failed"] == []
    assert {"cpu", "cores", "load_average", "load_average_end"} <= set(report["machine"])
    assert set(report["models"]) == {"stt", "llm", "tts"}
    turn = report["results"]["turn"]
    summary = turn["summary"]
    assert summary["turns"] == summary["answered"] == 1
    assert summary["virtual"]["turns"] == summary["virtual"]["answered"] == 1
    assert set(turn["in_process"]["turns"][0]["luxa"]["timings_ms"]) >= set(MARKS)
    assert "light" in turn["in_process"]["turns"][0]["luxa"]["transcript"].lower()
    for key in ("luxa_first_audio_ms", "sequential_first_audio_ms", "floor_first_audio_ms"):
        assert summary[key]["n"] == 1 and summary[key]["p50"] > 0, (key, summary[key])
    assert summary["virtual"]["recorded_first_audio_ms"]["n"] == 1
    assert summary["virtual"]["daemon_first_audio_ms"]["n"] == 1
    assert set(summary["luxa_parts_ms"]) == {"endpoint wait", "STT (after endpoint)", "LLM first token",
                                             "LLM first sentence", "TTS first audio", "playback start"}
    for key in ("ratio_luxa_to_sequential", "ratio_luxa_to_floor"):
        assert summary[key]["p50"] > 0 and summary[key]["p95"] > 0
    # the floor is a sum that starts with the configured end-of-turn silence
    floor = turn["in_process"]["turns"][0]["floor"]
    assert floor["first_audio_ms"] > floor["end_silence_ms"] == turn["settings"]["end_silence_ms"]
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert "LUXA / raw floor" in done.stdout


def test_bench_without_the_corpus_fails_with_one_line(run_cli, tmp_path):
    done = run_cli("bench", "turn", env={"LUXA_CORPUS": str(tmp_path / "missing")}, timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "corpus not found" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("luxa: error: bench: turn failed")


def test_bench_refuses_an_unknown_benchmark(run_cli):
    done = run_cli("bench", "everything", timeout=60)
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


@pytest.mark.integration
def test_bench_session_answers_every_turn_of_one_conversation_and_reports_its_figures(tmp_path):
    from Orchestrator.commands.bench import load_script

    out = tmp_path / "session.json"
    assert load_script("bench_session").main(["--turns", "4", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    turns = report["session"]["turns"]
    assert [t["turn"] for t in turns] == [1, 2, 3, 4] and not any("error" in t for t in turns)
    assert all(t["first_audio_ms"] > 0 and t["llm_first_token_ms"] > 0 for t in turns)
    assert turns[-1]["history_tokens"] > turns[0]["history_tokens"]  # one conversation throughout
    summary = report["summary"]
    assert summary["apologies"] == [] and summary["window_turns"] == 2
    assert summary["first_audio_ms_early"]["n"] == summary["first_audio_ms_late"]["n"] == 2
    assert set(summary["llm_first_token_ms_at"]) == {"1", "4"}


@pytest.mark.integration  # Whisper word timestamps (once, cached), Silero and smart-turn on the corpus
def test_bench_turn_end_reports_false_ends_and_end_wait_for_both_endpointers(run_cli, tmp_path):
    out = tmp_path / "bench.json"
    done = run_cli("bench", "turn-end", "--quick", "--json", str(out), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())["results"]["turn-end"]
    for side in ("fixed", "model"):
        figures = result[side]
        assert figures["utterances"] == len(figures["rows"]) > figures["inserted"] > 0
        assert 0 <= figures["false_ends"] <= figures["utterances"] and figures["no_end"] == 0
        assert figures["end_wait_ms"]["n"] > 0
    assert result["inference_ms"]["p50"] > 0
    assert "fixed silence 400 ms" in done.stdout and "smart-turn-v3.2" in done.stdout


def test_bench_satellites_sums_up_each_mode_and_says_whether_the_goals_are_met():
    """The figures the docs quote, from rows as the run records them (the run itself: `bench satellites`)."""
    from Orchestrator.commands.bench import load_script

    bench = load_script("bench_satellites")
    rows = [{"mode": "local", "recorded_first_audio_ms": v} for v in (800.0, 900.0)]
    rows += [{"mode": "one room", "recorded_first_audio_ms": v, "logged_first_audio_ms": 250.0} for v in (850.0, 950.0)]
    rows += [{"mode": "two rooms", "recorded_first_audio_ms": v} for v in (900.0, 2500.0)]
    rows.append({"mode": "two rooms", "error": "no line matching"})
    s = bench.summarise(rows)
    assert s["local"]["answered"] == 2 and s["two rooms"] == {**s["two rooms"], "turns": 3, "answered": 2}
    assert s["one room"]["recorded_first_audio_ms"]["p50"] == 900.0
    assert s["goals"]["one_room_added_ms_p50"] == 50.0 and s["goals"]["one_room_added_goal_met"]
    assert s["goals"]["two_rooms_p95_over_one_room_p95"] == round(2420.0 / 945.0, 2)
    assert not s["goals"]["two_rooms_goal_met"]
    assert bench._logged_ms("luxa: hi   [first audio 0.88 s]") == 880.0
    assert bench._logged_ms("satellite kitchen: luxa: hi   [first audio 830 ms]") == 830.0


def test_bench_satellites_without_the_corpus_fails_with_one_line(run_cli, tmp_path):
    done = run_cli("bench", "satellites", env={"LUXA_CORPUS": str(tmp_path / "missing")}, timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "corpus not found" in done.stderr
