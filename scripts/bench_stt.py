#!/usr/bin/env python3
"""STT benchmark: per-clip latency, RTF and WER through RobustSTTManager on the shared corpus,
p50/p95 overall and per language, plus the VAD's per-frame cost. With a short encoder window
(stt.window_padding_s, the default) the same clips run again on full 30 s windows, in the same
process, so the saving and its WER cost are side by side.

    .venv/bin/python scripts/bench_stt.py [--json OUT] [--corpus DIR] [--set key=value ...]

Figures only, no pass/fail: timings on shared machines vary too much to assert on.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_common import add_config_args, failed, load_pinned, percentile, write_json  # noqa: E402  (scripts/)
from Core import gpu  # noqa: E402

gpu.install_import_guard()


def corpus_clips(corpus: Path) -> list[tuple[Path, str, str]]:
    """(path, language, reference) for the FLEURS clips and the referenced spoken commands."""
    clips = [(p, p.stem.split("-")[1], p.with_suffix(".txt").read_text(encoding="utf-8").strip())
             for p in sorted((corpus / "fleurs").glob("fleurs-*.ogg"))]
    for row in (corpus / "commands" / "transcripts.tsv").read_text(encoding="utf-8").strip().splitlines():
        name, text = row.split("\t")
        clips.append((corpus / "commands" / name, "en", text))
    return clips


async def bench_manager(config, status, clips) -> list[dict]:
    from Core.audio import load_audio
    from STT import RobustSTTManager
    from STT.scoring import word_error_rate

    manager = RobustSTTManager(config, status)
    started = time.perf_counter()
    await manager.start()
    print(f"load + warm-up: {time.perf_counter() - started:.2f} s", file=sys.stderr)
    rows = []
    try:
        for path, language, reference in clips:
            result = await manager.transcribe(load_audio(path), language)
            rows.append({
                "clip": path.name, "language": language, "backend": result.backend,
                "duration_s": round(result.duration_s, 3), "latency_ms": round(result.latency_s * 1000, 1),
                "rtf": round(result.latency_s / result.duration_s, 4),
                "wer": round(word_error_rate([reference], [result.text]), 4),
                "text": result.text, "reference": reference,
            })
            print(f"{path.name:36s} {rows[-1]['latency_ms']:8.1f} ms  RTF {rows[-1]['rtf']:.3f}  "
                  f"WER {rows[-1]['wer']:.3f}", file=sys.stderr)
    finally:
        await manager.close()
    return rows


def summarise(rows: list[dict]) -> dict:
    from STT.scoring import word_error_rate

    def stats(group: list[dict]) -> dict:
        return {
            "clips": len(group),
            "latency_ms_p50": round(percentile([r["latency_ms"] for r in group], 50), 1),
            "latency_ms_p95": round(percentile([r["latency_ms"] for r in group], 95), 1),
            "rtf_p50": round(percentile([r["rtf"] for r in group], 50), 4),
            "rtf_p95": round(percentile([r["rtf"] for r in group], 95), 4),
            "wer": round(word_error_rate([r["reference"] for r in group], [r["text"] for r in group]), 4),
        }

    out = {"all": stats(rows)}
    for language in sorted({r["language"] for r in rows}):
        out[language] = stats([r for r in rows if r["language"] == language])
    fleurs = [r for r in rows if r["clip"].startswith("fleurs")]
    for language in sorted({r["language"] for r in fleurs}):
        out[f"fleurs-{language}"] = stats([r for r in fleurs if r["language"] == language])
    return out


def bench_vad(config, corpus: Path) -> dict:
    """Per-frame cost of the endpointer on a real recording padded with silence (one core)."""
    from Core.audio import STT_RATE, load_audio
    from STT.vad import Endpointer

    speech = load_audio(corpus / "fleurs" / "fleurs-en-001.ogg").to_rate(STT_RATE).samples
    silence = np.zeros(2 * STT_RATE, np.float32)
    samples = np.concatenate([silence, speech, silence])
    frame = STT_RATE * config.audio.frame_ms // 1000
    endpointer = Endpointer(config.vad, STT_RATE, config.audio.frame_ms)
    costs = []
    for i in range(0, len(samples) // frame * frame, frame):
        start = time.perf_counter()
        endpointer.process(samples[i:i + frame])
        costs.append((time.perf_counter() - start) * 1e6)
    frame_us = config.audio.frame_ms * 1000
    return {
        "frames": len(costs), "frame_ms": config.audio.frame_ms,
        "us_p50": round(percentile(costs, 50), 1), "us_p95": round(percentile(costs, 95), 1),
        "us_max": round(max(costs), 1),
        "fraction_of_real_time_p50": round(percentile(costs, 50) / frame_us, 5),
        "fraction_of_real_time_p95": round(percentile(costs, 95) / frame_us, 5),
    }


def _print_summary(summary: dict) -> None:
    for group, s in summary.items():
        print(f"{group:10s} n={s['clips']:2d}  latency p50 {s['latency_ms_p50']:7.1f} ms  p95 {s['latency_ms_p95']:7.1f} ms"
              f"  RTF p50 {s['rtf_p50']:.3f}  p95 {s['rtf_p95']:.3f}  WER {s['wer']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_args(parser, json_help="also write every figure to this JSON file")
    parser.add_argument("--corpus", default=os.environ.get("LUXA_CORPUS") or str(ROOT.parent / "shared" / "corpus"))
    args = parser.parse_args(argv)

    from Core.errors import LuxaError

    try:
        config, status = load_pinned(args.config, args.overrides)
        corpus = Path(args.corpus)
        if not corpus.is_dir():
            raise LuxaError(f"corpus not found: {corpus} (use --corpus or LUXA_CORPUS)")
        rows = asyncio.run(bench_manager(config, status, corpus_clips(corpus)))
        report = {"clips": rows, "summary": summarise(rows), "vad": bench_vad(config, corpus)}
        if config.stt.window_padding_s is not None:
            print("again on full 30 s windows (stt.window_padding_s=null):", file=sys.stderr)
            full = config.model_copy(update={"stt": config.stt.model_copy(update={"window_padding_s": None})})
            full_rows = asyncio.run(bench_manager(full, status, corpus_clips(corpus)))
            report["full_window"] = {"clips": full_rows, "summary": summarise(full_rows)}
    except LuxaError as err:
        return failed("bench_stt", err, exit_code=1)
    print(f"encoder window: speech + {config.stt.window_padding_s} s of padding" if config.stt.window_padding_s
          else "encoder window: full 30 s")
    _print_summary(report["summary"])
    if "full_window" in report:
        print("full 30 s windows, same clips:")
        _print_summary(report["full_window"]["summary"])
        for group, short in report["summary"].items():
            full_p50 = report["full_window"]["summary"][group]["latency_ms_p50"]
            print(f"{group:10s} latency p50 short / full window: x{short['latency_ms_p50'] / full_p50:.2f}")
    v = report["vad"]
    print(f"VAD per {v['frame_ms']} ms frame: p50 {v['us_p50']} us, p95 {v['us_p95']} us, max {v['us_max']} us "
          f"({100 * v['fraction_of_real_time_p95']:.2f}% of real time at p95)")
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
