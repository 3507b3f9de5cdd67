#!/usr/bin/env python3
"""The OpenAI-compatible routes through the real `openai` client, from a second process:
time to the first audio byte of /v1/audio/speech streamed (stream_format=audio) and not, and
the latency of /v1/audio/transcriptions on the corpus.

Every sentence is new (a number in each), so the TTS cache never answers. The daemon is started
here (headless `serve`) unless --url and --key name a running one.

    python scripts/bench_openai.py [--rounds 8] [--format mp3]
    python scripts/bench_openai.py --url http://127.0.0.1:8765 --key KEY
"""
from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai
from bench_api import REPO_ROOT, start_headless

TEXT = ("Order {n} is ready at the front desk. Courier {n} left it there a few minutes ago. "
        "Please collect parcel {n} before six tonight.")
CLIPS = ["fleurs/fleurs-en-000.ogg", "fleurs/fleurs-en-001.ogg", "fleurs/fleurs-en-002.ogg",
         "fleurs/fleurs-en-003.ogg", "fleurs/fleurs-en-004.ogg",
         "commands/turn_on_the_living_room_lamp.wav", "commands/living_room_light_en.wav"]


def summary(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{name:<44} n={len(seconds):<3} p50 {statistics.median(seconds) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms"


def speech(client: openai.OpenAI, fmt: str, streamed: bool, number: int) -> tuple[float, float]:
    """(first byte, last byte) in seconds from the request."""
    extra = {"stream_format": "audio"} if streamed else {}
    started = time.perf_counter()
    first = None
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", response_format=fmt,
                                                            input=TEXT.format(n=number), extra_body=extra) as response:
        for _ in response.iter_bytes():
            first = first or time.perf_counter() - started
    return first, time.perf_counter() - started


def bench(client: openai.OpenAI, corpus: Path, rounds: int, fmt: str) -> None:
    numbers = iter(random.Random(7).sample(range(1000, 9999), 4 * rounds))
    whole = [speech(client, fmt, False, next(numbers)) for _ in range(rounds)]
    streamed = [speech(client, fmt, True, next(numbers)) for _ in range(rounds)]
    print(f"POST /v1/audio/speech ({fmt}, 3 sentences, {len(TEXT.format(n=1000))} characters, every sentence new)")
    print(summary("  one file: first byte", [f for f, _ in whole]))
    print(summary("  stream_format=audio: first byte", [f for f, _ in streamed]))
    print(summary("  stream_format=audio: last byte", [last for _, last in streamed]))
    for response_format in ("json", "verbose_json"):
        times = []
        for clip in CLIPS:
            audio = (clip.rsplit("/", 1)[-1], (corpus / clip).read_bytes())
            started = time.perf_counter()
            client.audio.transcriptions.create(file=audio, model="whisper-1", language="en",
                                               response_format=response_format,
                                               timestamp_granularities=["word"] if response_format != "json" else openai.omit)
            times.append(time.perf_counter() - started)
        label = "json" if response_format == "json" else "verbose_json + words"
        print(summary(f"POST /v1/audio/transcriptions ({label})", times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--format", default="mp3", choices=["wav", "pcm", "flac", "mp3", "opus", "aac"])
    parser.add_argument("--corpus", type=Path, default=REPO_ROOT.parent / "shared" / "corpus")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="luxa-bench-openai-") as folder:
        proc = None
        if args.url is None:
            proc, args.url, args.key = start_headless(folder)
        try:
            client = openai.OpenAI(base_url=f"{args.url}/v1", api_key=args.key, max_retries=0, timeout=120.0)
            speech(client, args.format, True, 1)  # first request: lazy allocations, not the figures
            bench(client, args.corpus, args.rounds, args.format)
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
