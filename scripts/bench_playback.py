#!/usr/bin/env python3
"""Output buffer: how small `audio.playback_latency_s` can be before replies underrun on 2 busy cores.

For each candidate latency, LUXA's own Speaker (Orchestrator/audio_io.py) plays replies on the
private PulseAudio server (scripts/virtual_audio.sh) while Piper synthesises in a thread of the
same process (what happens during a reply: the next chunk is made while the first plays) and,
with --busy N, N `yes` processes load the cores. Reported per latency: the wait from play() to
the first sample at the device (PortAudio's own clock: p50/p95) and the underruns the device
reported while a reply played (`luxa_speaker_underruns_total`).

    python scripts/bench_playback.py [--latencies 0.03,0.05,0.08,0.15] [--replies 10] [--busy 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_common import describe_machine, load_average, machine, percentiles  # noqa: E402

DEFAULT_LATENCIES = (0.03, 0.05, 0.08, 0.15)


def piper_voice():
    from piper import PiperVoice

    from Core.models import resolve

    return PiperVoice.load(str(resolve("en_US-joe-medium", "piper").path))


def synthesise_until(voice, stop: threading.Event) -> None:
    """Piper in a loop: the CPU and the GIL the speaker's callback competes with during a reply."""
    while not stop.is_set():
        for _ in voice.synthesize("The next sentence of the reply is being synthesised right now."):
            if stop.is_set():
                return


async def measure(latency_s: float, replies: int, reply_audio) -> dict:
    from Orchestrator.audio_io import UNDERRUNS, Speaker

    speaker = Speaker(None, latency_s)
    await asyncio.to_thread(speaker.open)
    delays, before = [], UNDERRUNS._value.get()
    try:
        for _ in range(replies):
            speaker.begin()
            asked = time.perf_counter()
            speaker.play(reply_audio, "reply")
            await speaker.drain()
            first = speaker.first_sample_time()
            if first is not None:
                delays.append((first - asked) * 1000.0)
            await asyncio.sleep(0.2)
    finally:
        speaker.close()
    return {"latency_s": latency_s, "first_sample_ms": percentiles(delays),
            "underruns": UNDERRUNS._value.get() - before, "replies": replies}


def inner(args: argparse.Namespace) -> int:
    """Runs inside the private audio server's environment (PortAudio reads it at import)."""
    import numpy as np

    from Core.audio import Audio, pcm16_to_float32

    voice = piper_voice()
    chunks = list(voice.synthesize("This is one reply, long enough to hear a gap if the buffer runs dry."))
    reply = Audio(np.concatenate([pcm16_to_float32(c.audio_int16_bytes) for c in chunks]), chunks[0].sample_rate)
    stop = threading.Event()
    worker = threading.Thread(target=synthesise_until, args=(piper_voice(), stop), daemon=True)
    worker.start()
    try:
        rows = [asyncio.run(measure(latency, args.replies, reply)) for latency in args.latencies]
    finally:
        stop.set()
        worker.join(timeout=10)
    print(json.dumps(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latencies", type=lambda s: [float(x) for x in s.split(",")], default=list(DEFAULT_LATENCIES))
    parser.add_argument("--replies", type=int, default=10, help="replies played per latency (default 10)")
    parser.add_argument("--busy", type=int, default=3, help="`yes` processes beside it (default 3; 0 = quiet)")
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        return inner(args)

    from audio_harness import VirtualAudio, have_pulseaudio

    if not have_pulseaudio():
        print("bench_playback: PulseAudio tools missing (bash scripts/setup.sh --test)", file=sys.stderr)
        return 1
    report: dict = {"machine": machine(), "busy_processes": args.busy}
    busy = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(args.busy)]
    with tempfile.TemporaryDirectory(prefix="luxa-playback-", ignore_cleanup_errors=True) as tmp:
        audio = VirtualAudio(Path(tmp) / "pulse")
        try:
            out = subprocess.run([sys.executable, __file__, "--inner", "--replies", str(args.replies),
                                  "--latencies", ",".join(str(x) for x in args.latencies)],
                                 env=audio.env, capture_output=True, text=True, timeout=1800)
        finally:
            for p in busy:
                p.kill()
            audio.close()
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
        return out.returncode
    report["rows"] = json.loads(out.stdout.strip().splitlines()[-1])
    report["machine"]["load_average_end"] = load_average()
    print(describe_machine(report["machine"]) + f"; {args.busy} busy processes beside it, Piper synthesising in-process")
    print(f"{'playback_latency_s':>20}{'first sample p50':>18}{'p95':>8}{'underruns':>11}{'replies':>9}")
    for row in report["rows"]:
        p = row["first_sample_ms"]
        print(f"{row['latency_s']:>20.3f}{p['p50'] or float('nan'):>18.0f}{p['p95'] or float('nan'):>8.0f}"
              f"{row['underruns']:>11.0f}{row['replies']:>9}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LUXA_LOG_LEVEL", "WARNING")
    sys.exit(main())
