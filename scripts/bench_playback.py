#!/usr/bin/env python3
"""Output buffer: how small `audio.playback_latency_s` can be before replies underrun on 2 busy cores.

For each candidate latency, LUXA's own Speaker (Orchestrator/audio_io.py) plays replies on the
private PulseAudio server (scripts/virtual_audio.sh) while Piper synthesises in a thread of the
same process (what happens during a reply: the next chunk is made while the first plays) and,
with --busy N, N `yes` processes load the cores. The reply is a steady tone, and what the speaker
really played is recorded off the server (`vspeaker.monitor`). Reported per latency: the wait from
play() to the first sample at the device (PortAudio's own clock: p50/p95), the dropouts heard in the
recording (a gap of 10-150 ms inside a tone: the buffer ran dry), and the underruns the device
reported (`luxa_speaker_underruns_total`; through PulseAudio's ALSA plugin these come and go with
the load and did not match the recordings).

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
TONE_S = 2.0
WINDOW_S = 0.01


def dropouts(samples) -> int:
    """Gaps of 10-150 ms inside the tones of a recording (longer ones are the pauses between replies)."""
    import numpy as np

    n = int(16000 * WINDOW_S)
    rms = np.sqrt((samples[: len(samples) // n * n].reshape(-1, n).astype(np.float64) ** 2).mean(axis=1))
    loud = rms > 0.05
    count, run, seen_loud = 0, 0, False
    for is_loud in loud:
        if is_loud:
            if seen_loud and 1 <= run <= 15:
                count += 1
            run, seen_loud = 0, True
        else:
            run += 1
    return count


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

    from Core.audio import Audio

    t = np.arange(int(TONE_S * 22050)) / 22050  # Piper's rate: the speaker resamples it as it does replies
    reply = Audio((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050)
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
    report: dict = {"machine": machine(), "busy_processes": args.busy, "rows": []}
    busy = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(args.busy)]
    with tempfile.TemporaryDirectory(prefix="luxa-playback-", ignore_cleanup_errors=True) as tmp:
        audio = VirtualAudio(Path(tmp) / "pulse")
        try:
            for latency in args.latencies:
                recording = audio.record(Path(tmp) / f"speaker-{latency}.wav")
                out = subprocess.run([sys.executable, __file__, "--inner", "--replies", str(args.replies),
                                      "--latencies", str(latency)],
                                     env=audio.env, capture_output=True, text=True, timeout=1800)
                played = recording.stop()
                if out.returncode != 0:
                    print(out.stderr[-3000:], file=sys.stderr)
                    return out.returncode
                row = json.loads(out.stdout.strip().splitlines()[-1])[0]
                row["dropouts_heard"] = dropouts(played)
                report["rows"].append(row)
        finally:
            for p in busy:
                p.kill()
            audio.close()
    report["machine"]["load_average_end"] = load_average()
    print(describe_machine(report["machine"]) + f"; {args.busy} busy processes beside it, Piper synthesising in-process")
    print(f"{'playback_latency_s':>20}{'first sample p50':>18}{'p95':>8}{'dropouts heard':>16}"
          f"{'underruns reported':>20}{'replies':>9}")
    for row in report["rows"]:
        p = row["first_sample_ms"]
        print(f"{row['latency_s']:>20.3f}{p['p50'] or float('nan'):>18.0f}{p['p95'] or float('nan'):>8.0f}"
              f"{row['dropouts_heard']:>16}{row['underruns']:>20.0f}{row['replies']:>9}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LUXA_LOG_LEVEL", "WARNING")
    sys.exit(main())
