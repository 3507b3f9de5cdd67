#!/usr/bin/env python3
"""Benchmark the TTS stage: time to first audio and real-time factor per backend, cache hits.

Each backend is forced in turn through an answer session fed sentence by sentence (the path the
voice loop uses), with the cache cleared before every run so that every figure is a real
synthesis. Time to first audio = start -> first sentence's audio; RTF = total synthesis time /
seconds of audio produced (below 1 = faster than real time).

    python scripts/bench_tts.py [--json OUT] [--runs N] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from Config import load_config  # noqa: E402
from bench_common import add_config_args, failed, percentile, write_json  # noqa: E402  (scripts/)
from Core import gpu  # noqa: E402
from Core.errors import LuxaError  # noqa: E402
from Core.sentences import split_sentences  # noqa: E402

TEXTS = {
    "short": "Turn on the kitchen lights.",
    "medium": "The weather tomorrow will be sunny in the morning, with a few clouds later in the day. "
              "Take a light jacket if you go out tonight.",
    "long": "Here is a summary of your day. You have a meeting with the design team at ten, then lunch "
            "with Sarah at half past twelve. In the afternoon the plumber comes to fix the kitchen sink, "
            "so someone needs to be at home. Your train to Lyon leaves at six from platform four. "
            "Do not forget to pack the charger for your laptop, and the book you promised to lend Paul.",
}
BACKENDS = ("piper_native", "piper_cli", "system_voice")
CACHE_HITS = 200


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}


async def one_run(manager, text: str, backend: str) -> tuple[float, float]:
    """(time to first audio, RTF) of one streamed synthesis."""
    manager.cache.clear()
    start = time.perf_counter()
    first, audio_s = None, 0.0
    answer = manager.answer(backend=backend)
    for sentence in split_sentences(text):
        result = await answer.say(sentence)
        if result.backend != backend:
            raise LuxaError(f"{backend} failed during the benchmark: {result.error}")
        first = first if first is not None else time.perf_counter() - start
        audio_s += result.audio.duration_s
    return first, (time.perf_counter() - start) / audio_s


async def cache_hits(manager) -> dict[str, float]:
    text = TEXTS["medium"]
    await manager.synthesize(text)
    latencies = []
    for _ in range(CACHE_HITS):
        start = time.perf_counter()
        result = await manager.synthesize(text)
        latencies.append(time.perf_counter() - start)
        assert result.cached
    return summary(latencies)


async def bench(config, runs: int) -> dict:
    from TTS import UnifiedTTSManager

    status = gpu.check(config.gpu.index, config.gpu.name_pattern, config.gpu.min_free_mb, config.gpu.on_missing)
    manager = UnifiedTTSManager(config, status)
    start = time.perf_counter()
    await manager.start()
    report: dict = {"device": status.device, "start_s": time.perf_counter() - start, "runs": runs, "backends": {}}
    for backend in BACKENDS:
        if backend in manager.left_out:
            continue
        await one_run(manager, TEXTS["short"], backend)  # warm-up: first-call costs are not the steady state
        report["backends"][backend] = {}
        for size, text in TEXTS.items():
            samples = [await one_run(manager, text, backend) for _ in range(runs)]
            report["backends"][backend][size] = {
                "first_audio_s": summary([s[0] for s in samples]), "rtf": summary([s[1] for s in samples])}
    report["cache_hit_s"] = await cache_hits(manager)
    await manager.close()
    return report


def print_table(report: dict) -> None:
    print(f"device {report['device']}, start {report['start_s']:.2f} s, {report['runs']} runs per cell")
    print(f"{'backend':<14}{'text':<8}{'first audio p50':>17}{'p95':>9}{'RTF p50':>10}{'p95':>8}")
    for backend, sizes in report["backends"].items():
        for size, cell in sizes.items():
            fa, rtf = cell["first_audio_s"], cell["rtf"]
            print(f"{backend:<14}{size:<8}{fa['p50'] * 1000:>14.0f} ms{fa['p95'] * 1000:>6.0f} ms"
                  f"{rtf['p50']:>10.3f}{rtf['p95']:>8.3f}")
    hit = report["cache_hit_s"]
    print(f"cache hit: p50 {hit['p50'] * 1e6:.0f} us, p95 {hit['p95'] * 1e6:.0f} us ({CACHE_HITS} hits)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_args(parser, json_help="also write the figures as JSON")
    parser.add_argument("--runs", type=int, default=5, help="runs per backend and text length (default 5)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides + ["cache.enabled=true"])
        gpu.pin(config.gpu.index)
        report = asyncio.run(bench(config, args.runs))
    except LuxaError as err:
        return failed("bench_tts", err, exit_code=1)
    print_table(report)
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
