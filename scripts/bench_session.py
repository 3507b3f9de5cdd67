#!/usr/bin/env python3
"""Benchmark a long session: is turn 200 as fast as turn 5, and does memory stay put?

One Assistant answers N voice turns in a row in this process, each clip fed in real time
through the same VoiceLoop as the microphone (`turn`'s one_turn), one conversation for the
whole session (its history fills llm.history_token_budget after some 15-30 turns and is trimmed
from then on). Questions rotate: the two corpus commands and the English FLEURS questions,
levelled and cut to their last utterance as `bench turn` does.

Reported: end of speech -> first reply audio, p50/p95 over turns 1-50 and over the last 50,
and their ratio; the LLM's first-token latency at turns 1, 30, 100 and N; RSS every 10 turns
and its slope after warm-up (least squares from turn 50 on) in MB per 100 turns.

    python scripts/bench_session.py [--turns 200] [--json OUT] [--set key=value]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_common import (  # noqa: E402
    add_config_args,
    default_corpus,
    failed,
    load_average,
    load_pinned,
    percentiles,
    report_header,
    write_json,
)
from bench_turn import BENCH_OVERRIDES, Clip, prepare  # noqa: E402

from Core.errors import LuxaError  # noqa: E402

WINDOW = 50  # turns in the early and late windows that are compared
WARMUP = 50  # turns before the RSS slope is fitted
RSS_EVERY = 10
QUESTION_MAX_PAUSE_MS = 250  # FLEURS questions cut where such a pause ends an utterance: one clip, one turn
FIRST_TOKEN_AT = (1, 30, 100)
COMMANDS = ("turn_on_the_living_room_lamp.wav", "living_room_light_en.wav")


async def questions(config, corpus: Path, level_dbfs: float) -> list:
    """Prepared inputs in rotation order: command, command, FLEURS (each FLEURS clip in turn)."""
    strict = config.model_copy(deep=True)
    strict.vad.end_silence_ms = QUESTION_MAX_PAUSE_MS
    strict.vad.turn_model = None  # cut at every such pause, whatever the turn model would hear
    command_clips = [corpus / "commands" / name for name in COMMANDS]
    commands = [await prepare(strict, Clip(p, "en"), level_dbfs) for p in command_clips]
    fleur_clips = sorted((corpus / "fleurs").glob("fleurs-en-*.ogg"))
    fleurs = [await prepare(strict, Clip(p, "en"), level_dbfs) for p in fleur_clips]
    commands, fleurs = [c for c in commands if c.audio is not None], [f for f in fleurs if f.audio is not None]
    if not commands or not fleurs:
        raise LuxaError(f"bench_session: the corpus at {corpus} has no usable commands or FLEURS clips")
    order = []
    for fleur in fleurs:
        order += commands + [fleur]
    return order


async def session(config, status, inputs: list, turns: int) -> dict:
    from Core.errors import AudioInputError
    from Orchestrator.assistant import Assistant
    from Orchestrator.commands.turn import one_turn

    assistant = Assistant(config, status)
    await assistant.start()
    process = psutil.Process()
    rows: list[dict] = []
    rss: list[tuple[int, float]] = []
    try:
        for n in range(1, turns + 1):
            item = inputs[(n - 1) % len(inputs)]
            row: dict = {"turn": n, "clip": item.clip.path.name}
            try:
                result, _ = await one_turn(assistant, item.audio, name=item.clip.path.name)
                marks = result.timings_ms
                row.update(transcript=result.transcript, reply=result.reply, backend=result.backends.get("llm"),
                           first_audio_ms=marks.get("first_audio"),
                           llm_first_token_ms=_minus(marks.get("llm_first_token"), marks.get("stt")),
                           history_tokens=assistant.llm.conversation.history_tokens())
            except AudioInputError as err:
                row["error"] = str(err)
            rows.append(row)
            if n % RSS_EVERY == 0 or n == 1:
                rss.append((n, round(process.memory_info().rss / 2**20, 1)))
            print(f"turn {n:4d} {row['clip']:34s} first audio {row.get('first_audio_ms')} ms  LLM first token "
                  f"{row.get('llm_first_token_ms')} ms  history {row.get('history_tokens')} tokens  "
                  f"{row.get('backend')}", file=sys.stderr, flush=True)
    finally:
        await assistant.close()
    return {"turns": rows, "rss_mb": rss}


def _minus(a: float | None, b: float | None) -> float | None:
    return round(a - b, 1) if a is not None and b is not None else None


def rss_slope_per_100(rss: list[tuple[int, float]], after: int) -> float | None:
    points = [(n, mb) for n, mb in rss if n >= after] if len(rss) > 2 else []
    if len(points) < 2:
        return None
    slope = np.polyfit([n for n, _ in points], [mb for _, mb in points], 1)[0]
    return round(float(slope) * 100, 2)


def summarise(result: dict, turns: int) -> dict:
    rows = result["turns"]
    first = [r.get("first_audio_ms") for r in rows]
    window = min(WINDOW, turns // 2)  # a short run (a test) compares its halves
    early, late = percentiles(first[:window]), percentiles(first[-window:])
    apologies = [r["turn"] for r in rows if r.get("backend") == "apology"]
    token_at = {n: rows[n - 1].get("llm_first_token_ms") for n in (*FIRST_TOKEN_AT, turns) if n <= len(rows)}
    return {
        "first_audio_ms_early": early, "first_audio_ms_late": late,
        "p95_late_over_early": round(late["p95"] / early["p95"], 2) if early["p95"] and late["p95"] else None,
        "llm_first_token_ms_at": token_at,
        "window_turns": window,
        "rss_mb_slope_per_100_turns": rss_slope_per_100(result["rss_mb"], min(WARMUP, turns // 2)),
        "apologies": apologies,
        "errors": [r["turn"] for r in rows if "error" in r],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200, help="turns in the session (default 200)")
    add_config_args(parser, json_help="also write every figure and every turn to this file")
    parser.add_argument("--level-dbfs", type=float, default=-20.0, help="speech level every clip is levelled to")
    parser.add_argument("--corpus", default=str(default_corpus()))
    args = parser.parse_args(argv)

    try:
        if args.turns < 2:
            raise LuxaError("bench_session: --turns must be at least 2")
        overrides = BENCH_OVERRIDES + args.overrides
        config, status = load_pinned(args.config, overrides)
        report = report_header(config, overrides, device=status.device, settings={
            "turns": args.turns, "history_token_budget": config.llm.history_token_budget,
            "prompt_eval_budget_s": config.llm.prompt_eval_budget_s})
        inputs = asyncio.run(questions(config, Path(args.corpus), args.level_dbfs))
        started = time.monotonic()
        report["session"] = asyncio.run(session(config, status, inputs, args.turns))
        report["seconds"] = round(time.monotonic() - started, 1)
    except LuxaError as err:
        return failed("bench_session", err)
    report["machine"]["load_average_end"] = load_average()
    report["summary"] = summary = summarise(report["session"], args.turns)
    early, late = summary["first_audio_ms_early"], summary["first_audio_ms_late"]
    window = summary["window_turns"]
    print(f"first audio, turns 1-{window}: p50 {early['p50']} ms p95 {early['p95']} ms; last {window}: "
          f"p50 {late['p50']} ms p95 {late['p95']} ms; p95 ratio {summary['p95_late_over_early']}")
    print("LLM first token at turn " + ", ".join(f"{n}: {ms} ms" for n, ms in summary["llm_first_token_ms_at"].items()))
    print(f"RSS every {RSS_EVERY} turns (MB): {report['session']['rss_mb']}")
    print(f"RSS slope from turn {WARMUP} on: {summary['rss_mb_slope_per_100_turns']} MB per 100 turns; "
          f"apologies: {summary['apologies'] or 'none'}; session {report['seconds']} s")
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
