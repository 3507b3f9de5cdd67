#!/usr/bin/env python3
"""Load test of the control API from a second process on loopback: POST /v1/say throughput and
latency (p50/p95) with cache misses (every text new) and cache hits (one text again and again),
and, with --voice-turn, the voice loop's turn latency idle and while the API is under load.

The daemon is started here (headless `serve`, or the voice loop on the virtual audio devices of
scripts/audio_harness.py with the API on) unless --url and --key name a running one. Bounded in
count (--requests per phase) and in time (--max-seconds per phase).

    python scripts/bench_api.py [--requests 40] [--concurrency 2] [--max-seconds 60] [--voice-turn]
    python scripts/bench_api.py --url http://127.0.0.1:8765 --key KEY
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

SENTENCE = "The living room lamp is now on, and the heating is set to twenty degrees."
QUESTION = "commands/turn_on_the_living_room_lamp.wav"


@dataclass
class Phase:
    name: str
    latencies_s: list[float] = field(default_factory=list)
    refused: int = 0  # 503: the queue was full
    failed: int = 0
    wall_s: float = 0.0

    def line(self) -> str:
        done = self.latencies_s
        if not done:
            return f"{self.name:<22} no request succeeded ({self.refused} refused, {self.failed} failed)"
        ordered = sorted(done)
        p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
        return (f"{self.name:<22} {len(done):>4} ok {self.refused:>3} x503 {self.failed:>2} failed  "
                f"{len(done) / self.wall_s:6.1f} req/s  p50 {statistics.median(done) * 1000:7.1f} ms  "
                f"p95 {p95 * 1000:7.1f} ms")


def run_phase(name: str, url: str, key: str, texts: list[str], concurrency: int, max_seconds: float) -> Phase:
    phase = Phase(name)
    deadline = time.monotonic() + max_seconds
    headers = {"Authorization": f"Bearer {key}"}

    def one(client: httpx.Client, text: str) -> None:
        if time.monotonic() > deadline:
            return
        started = time.perf_counter()
        response = client.post("/v1/say", json={"text": text})
        if response.status_code == 200:
            phase.latencies_s.append(time.perf_counter() - started)
        elif response.status_code == 503:
            phase.refused += 1
        else:
            phase.failed += 1

    started = time.perf_counter()
    with httpx.Client(base_url=url, headers=headers, timeout=120.0,
                      limits=httpx.Limits(max_connections=concurrency)) as client, \
            ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda text: one(client, text), texts))
    phase.wall_s = time.perf_counter() - started
    return phase


def unique_texts(n: int) -> list[str]:
    return [f"Reminder {uuid.uuid4().hex[:4]}: {SENTENCE}" for _ in range(n)]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not (k.startswith("LUXA_") and "__" in k)}


def start_headless(state_dir: str) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen([sys.executable, "-u", "run_assistant.py", "--set", f"service.state_dir={state_dir}",
                             "--set", "api.port=0", "--set", "api.rate_limit_per_minute=100000", "serve"],
                            cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if match := re.search(r"LUXA control API on (http://\S+)", line):
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep draining
            return proc, match.group(1), (Path(state_dir) / "api_key").read_text().strip()
    raise SystemExit(f"the daemon exited ({proc.wait()}) before serving")


def bench_say(url: str, key: str, args) -> None:
    print(f"POST /v1/say on {url}: {args.requests} requests per phase, concurrency {args.concurrency}")
    print(run_phase("cache misses", url, key, unique_texts(args.requests), args.concurrency, args.max_seconds).line())
    run_phase("prime", url, key, [SENTENCE], 1, args.max_seconds)
    print(run_phase("cache hits", url, key, [SENTENCE] * args.requests, args.concurrency, args.max_seconds).line())


def bench_voice_turn(args, corpus: Path) -> None:
    """The voice loop on virtual audio with the API on: one turn idle, one under API load."""
    from audio_harness import AssistantProcess, VirtualAudio

    with tempfile.TemporaryDirectory(prefix="luxa-bench-api-") as folder:
        audio = VirtualAudio(Path(folder) / "pulse")
        audio.start_noise_floor()
        luxa = AssistantProcess(audio.env, "--set", f"service.state_dir={folder}", "--set", "api.enabled=true",
                                "--set", "api.port=0", "--set", "api.rate_limit_per_minute=100000")
        try:
            url = re.search(r"(http://\S+)", luxa.wait_for(r"control API on http://", timeout=240)).group(1)
            key = (Path(folder) / "api_key").read_text().strip()
            luxa.wait_for("LUXA is listening", timeout=60)
            idle = _turn(audio, luxa, corpus / QUESTION)
            stop = threading.Event()
            load = Phase("say misses during turn")

            def keep_loading() -> None:
                started = time.perf_counter()
                while not stop.is_set():
                    more = run_phase("load", url, key, unique_texts(args.concurrency), args.concurrency, 30)
                    load.latencies_s += more.latencies_s
                    load.refused += more.refused
                    load.failed += more.failed
                load.wall_s = time.perf_counter() - started

            loader = threading.Thread(target=keep_loading)
            loader.start()
            time.sleep(2.0)  # the API is busy before the user speaks
            try:
                busy = _turn(audio, luxa, corpus / QUESTION)
            finally:
                stop.set()
                loader.join()
            print(f"voice turn (end of question -> [speaking]): idle {idle:.2f} s, during API load {busy:.2f} s")
            print(load.line())
        finally:
            luxa.stop()
            luxa.kill()
            audio.close()


def _turn(audio, luxa, question: Path) -> float:
    audio.play_into_mic(question).wait(timeout=30)
    ended = time.monotonic()
    luxa.wait_for(r"^\[speaking\]", timeout=120)
    took = time.monotonic() - ended
    luxa.wait_for(r"^\[listening\]", timeout=120)
    time.sleep(1.0)
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running daemon's API (default: start one here)")
    parser.add_argument("--key", help="its API key (with --url)")
    parser.add_argument("--requests", type=int, default=40, help="requests per phase")
    parser.add_argument("--concurrency", type=int, default=2, help="parallel clients (the gate runs one at a time)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time bound per phase")
    parser.add_argument("--voice-turn", action="store_true",
                        help="also measure a voice turn idle and under API load (PulseAudio virtual devices)")
    args = parser.parse_args()
    corpus = Path(os.environ.get("LUXA_CORPUS") or REPO_ROOT.parent / "shared" / "corpus")
    if args.url:
        bench_say(args.url, args.key or "", args)
    else:
        with tempfile.TemporaryDirectory(prefix="luxa-bench-api-") as state:
            proc, url, key = start_headless(state)
            try:
                bench_say(url, key, args)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    if args.voice_turn:
        bench_voice_turn(args, corpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
