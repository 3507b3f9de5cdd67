#!/usr/bin/env python3
"""Satellite benchmark: end of speech on a satellite's microphone -> first reply audio on its speaker.

One LUXA process (the voice loop, with two real wyoming-satellite rooms in satellites.rooms) on a
private PulseAudio server (scripts/audio_harness.py, scripts/satellite_harness.py). Each clip
(the corpus commands and the 2 shortest English FLEURS clips, levelled as scripts/bench_turn.py
levels them) is asked, in blocks of the same kind so each conversation keeps its model cache warm:
- local: played into LUXA's own virtual microphone, the reply recorded on its virtual speaker
  (the turn of `bench turn`'s virtual-audio path);
- one room: played into the kitchen satellite's microphone, its speaker recorded;
- two rooms: played into both satellites' microphones at the same moment.
Latency is read off the recordings: the last loud 10 ms of what was played into the mic -> the
first loud 10 ms on the speaker after it. The daemon's own figure (its endpointer's end -> first
reply audio handed over) is kept beside it: the difference is transport and playback buffering.

    python scripts/bench_satellites.py [--quick] [--reps N] [--clips N] [--json OUT]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_common import default_corpus, describe_machine, load_average, machine, models, percentiles
from bench_turn import BENCH_OVERRIDES, Prepared, _prepare_all, corpus_clips

from Core import gpu
from Core.errors import LuxaError

ROOMS = ("kitchen", "office")
LOCAL = "local"
MODES = ("local", "one room", "two rooms")
GOAL_ADDED_MS = 100.0  # one room over the local loop, p50
GOAL_TWO_ROOMS = 2.0  # two rooms' p95 over one room's


def _target(name: str) -> tuple[str, str, str, str]:
    """(sink to play the question into, its monitor, the speaker's monitor, the reply's log pattern)."""
    if name == LOCAL:
        return "vmic_feed", "vmic_feed.monitor", "vspeaker.monitor", r"^luxa: |nothing heard|ignored: "
    return f"{name}_mic", f"{name}_mic.monitor", f"{name}_spk.monitor", f"satellite {name}: luxa: "


def _logged_ms(line: str) -> float | None:
    """The daemon's first-audio figure: '[first audio 0.88 s]' (voice loop) or '[first audio 830 ms]'."""
    m = re.search(r"\[first audio ([\d.]+) (s|ms)\]", line)
    return None if m is None else float(m.group(1)) * (1000.0 if m.group(2) == "s" else 1.0)


def ask(audio, luxa, wav: Path, who: tuple[str, ...], work: Path) -> list[dict]:
    """Play `wav` into each of `who` at once; one row per target with the recorded and logged latency."""
    from audio_harness import Recording, first_loud, last_loud

    luxa.skip_pending()
    stamp = time.monotonic_ns()
    recs = {}
    for name in who:
        _, mic_monitor, spk_monitor, _ = _target(name)
        recs[name] = (Recording(audio, work / f"{name}-{stamp}-mic.wav", mic_monitor),
                      Recording(audio, work / f"{name}-{stamp}-spk.wav", spk_monitor))
    time.sleep(0.5)
    plays = [subprocess.Popen(["paplay", f"--device={_target(n)[0]}", str(wav)], env=audio.env) for n in who]
    for p in plays:
        p.wait(timeout=60)
    rows: list[dict] = [{"target": n} for n in who]
    try:
        lines = luxa.wait_for_each(*(_target(n)[3] for n in who), timeout=90)
        for row, line in zip(rows, lines):
            if "luxa: " not in line:
                row["error"] = line
            row["reply"] = line.split("luxa: ", 1)[-1].split("   [first audio")[0]
            row["logged_first_audio_ms"] = _logged_ms(line)
    except AssertionError as err:  # no answer: counted, not fatal
        for row in rows:
            row.setdefault("error", str(err))
    for name, row in zip(who, rows):
        if "error" not in row:  # the reply has played out: the next question is heard
            recs[name][1].wait_played_out(1.2, timeout=90)
    time.sleep(0.6)  # and the room's mic is listened to again (it is muted while the reply plays)
    for row, name in zip(rows, who):
        mic, spk = recs[name]
        asked, played = mic.stop(), spk.stop()
        end = last_loud(asked)
        if end is None or "error" in row:
            continue
        end += mic.started - spk.started  # on the speaker recording's timeline
        first = first_loud(played, after_s=end)
        if first is not None:
            row["recorded_first_audio_ms"] = round((first - end) * 1000.0, 1)
    return rows


def run_house(inputs: list[Prepared], reps: int, daemon_args: list[str]) -> dict:
    from audio_harness import AssistantProcess, VirtualAudio, have_pulseaudio
    from satellite_harness import Satellite, add_room_devices, free_port, rooms_setting, satellite_python

    from Core.audio import write_wav

    if not have_pulseaudio():
        raise LuxaError("bench_satellites: PulseAudio tools missing (bash scripts/setup.sh --test)")
    python = satellite_python()
    with tempfile.TemporaryDirectory(prefix="luxa-bench-sat-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        audio = VirtualAudio(work / "pulse")
        audio.start_noise_floor()
        sats: dict[str, Satellite] = {}
        luxa = None
        try:
            for room in ROOMS:
                add_room_devices(audio, room)
                sats[room] = Satellite(python, audio, room, free_port(), work / f"{room}.log")
                sats[room].start()
            luxa = AssistantProcess(audio.env, "--set", rooms_setting(sats), *daemon_args)
            luxa.wait_for("LUXA is listening", timeout=300)
            for room in ROOMS:
                if not any(f"satellite {room}: pipeline" in line for line in list(luxa.lines)):
                    luxa.wait_for(f"satellite {room}: pipeline", timeout=60)
            time.sleep(1.0)  # let the streams settle
            wavs = []
            for i, item in enumerate(p for p in inputs if p.audio is not None):
                wavs.append((item.clip.path.name, work / f"clip{i}.wav"))
                write_wav(wavs[-1][1], item.audio)
            turns: list[dict] = []
            for mode, who in zip(MODES, ((LOCAL,), (ROOMS[0],), ROOMS)):
                for rep in range(reps):
                    for clip, wav in wavs:
                        for row in ask(audio, luxa, wav, who, work):
                            turns.append({"mode": mode, "rep": rep, "clip": clip, **row})
                            print(f"{mode:9s} {row['target']:8s} {clip:34s} recorded "
                                  f"{row.get('recorded_first_audio_ms')} ms, daemon {row.get('logged_first_audio_ms')}"
                                  f" ms{'  ' + row['error'] if 'error' in row else ''}", file=sys.stderr, flush=True)
        finally:
            if luxa is not None:
                luxa.shut_down()
            for sat in sats.values():
                sat.kill()
            audio.close()
    return {"turns": turns, "not_prepared": {p.clip.path.name: p.note for p in inputs if p.audio is None}}


def summarise(turns: list[dict]) -> dict:
    out: dict = {}
    for mode in MODES:
        rows = [t for t in turns if t["mode"] == mode]
        out[mode] = {"turns": len(rows), "answered": sum("recorded_first_audio_ms" in t for t in rows),
                     "recorded_first_audio_ms": percentiles([t.get("recorded_first_audio_ms") for t in rows]),
                     "logged_first_audio_ms": percentiles([t.get("logged_first_audio_ms") for t in rows]),
                     # spoken commands are answered without the LLM; FLEURS questions go to it
                     "commands_recorded_ms": percentiles([t.get("recorded_first_audio_ms") for t in rows
                                                          if not t.get("clip", "").startswith("fleurs")]),
                     "fleurs_recorded_ms": percentiles([t.get("recorded_first_audio_ms") for t in rows
                                                        if t.get("clip", "").startswith("fleurs")])}
    local, one, two = (out[m]["recorded_first_audio_ms"] for m in MODES)
    added = None if local["p50"] is None or one["p50"] is None else round(one["p50"] - local["p50"], 1)
    added95 = None if local["p95"] is None or one["p95"] is None else round(one["p95"] - local["p95"], 1)
    ratio = None if one["p95"] is None or two["p95"] is None or not one["p95"] else round(two["p95"] / one["p95"], 2)
    out["goals"] = {"one_room_added_ms_p50": added, "one_room_added_ms_p95": added95,
                    "one_room_added_goal_met": added is not None and added <= GOAL_ADDED_MS,
                    "two_rooms_p95_over_one_room_p95": ratio,
                    "two_rooms_goal_met": ratio is not None and ratio <= GOAL_TWO_ROOMS}
    return out


def print_report(report: dict) -> None:
    s = report["summary"]
    print(describe_machine(report["machine"]))
    print("models: " + "; ".join(f"{k} {v}" for k, v in report["models"].items()))
    print("end of speech on the mic -> first reply audio on the speaker (ms), read off the recordings; "
          "daemon = its own log")
    print(f"{'':12s}{'answered':>10}{'p50':>8}{'p95':>8}{'daemon p50':>12}{'daemon p95':>12}"
          f"{'commands p50/p95':>18}{'FLEURS p50/p95':>16}")
    for mode in MODES:
        m = s[mode]
        r, d, c, f = (m[k] for k in ("recorded_first_audio_ms", "logged_first_audio_ms", "commands_recorded_ms",
                                     "fleurs_recorded_ms"))
        print(f"{mode:12s}{m['answered']:>5}/{m['turns']:<4}{_fmt(r['p50']):>8}{_fmt(r['p95']):>8}"
              f"{_fmt(d['p50']):>12}{_fmt(d['p95']):>12}{_fmt(c['p50']) + '/' + _fmt(c['p95']):>18}"
              f"{_fmt(f['p50']) + '/' + _fmt(f['p95']):>16}")
    g = s["goals"]
    print(f"one room over the local loop: p50 {_fmt(g['one_room_added_ms_p50'])} ms, p95 "
          f"{_fmt(g['one_room_added_ms_p95'])} ms (goal p50 <= {GOAL_ADDED_MS:.0f} ms: "
          f"{'met' if g['one_room_added_goal_met'] else 'missed'})")
    print(f"two rooms at once: p95 x{_fmt(g['two_rooms_p95_over_one_room_p95'], 2)} of one room's (goal <= "
          f"x{GOAL_TWO_ROOMS:.0f}: {'met' if g['two_rooms_goal_met'] else 'missed'})")


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="OUT", help="also write every figure and every turn to this file")
    parser.add_argument("--quick", action="store_true", help="1 repetition instead of --reps")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every clip in every mode (default 3)")
    parser.add_argument("--clips", type=int, default=None, help="only the first N clips")
    parser.add_argument("--level-dbfs", type=float, default=-20.0, help="speech level every clip is levelled to")
    parser.add_argument("--corpus", default=str(default_corpus()))
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    from Config import load_config

    reps = 1 if args.quick else args.reps
    try:
        if reps < 1 or (args.clips is not None and args.clips < 1):
            raise LuxaError("bench_satellites: --reps and --clips must be at least 1")
        overrides = BENCH_OVERRIDES + args.overrides
        config = load_config(args.config, overrides)
        gpu.pin(config.gpu.index)  # before the endpointer loads onnxruntime (bench_turn's import guard)
        clips = corpus_clips(Path(args.corpus), True, args.clips)  # commands + the 2 shortest English FLEURS
        report: dict = {"machine": machine(), "models": models(config), "clips": [c.path.name for c in clips],
                        "reps": reps, "settings": {"overrides": overrides}}
        inputs = asyncio.run(_prepare_all(config, clips, args.level_dbfs))
        daemon_args = ([f"--config={args.config}"] if args.config else []) + [a for o in overrides for a in ("--set", o)]
        report["house"] = run_house(inputs, reps, daemon_args)
    except (LuxaError, AssertionError, RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"bench_satellites: error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 1)
    report["machine"]["load_average_end"] = load_average()
    report["summary"] = summarise(report["house"]["turns"])
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
