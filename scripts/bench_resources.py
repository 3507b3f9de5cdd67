#!/usr/bin/env python3
"""What the daemon costs the machine: cold start to READY, model load times, CPU while
idle-listening, peak RSS (through one answered turn), threads and open files.

`run_assistant.py` runs as a subprocess on a private PulseAudio server (the e2e harness), with
NOTIFY_SOCKET pointing at a datagram socket made here: READY=1 is what systemd waits for, sent
once the models are loaded and the audio is open (Orchestrator/service/notify.py).

    python scripts/bench_resources.py [--quick] [--idle-s 20] [--json OUT] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_common import default_corpus, describe_machine, load_average, machine, models

from Core.errors import LuxaError

QUESTION = Path("commands") / "turn_on_the_living_room_lamp.wav"


class NotifyListener:
    """The systemd side of sd_notify: a datagram socket that timestamps every message."""

    def __init__(self, folder: Path):
        self.path = folder / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.5)

    def wait_for(self, message: str, timeout: float) -> float:
        """time.monotonic() when a datagram holding the line `message` arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096).decode(errors="replace")
            except TimeoutError:
                continue
            if message in data.splitlines():
                return time.monotonic()
        raise LuxaError(f"bench_resources: no {message} from the daemon within {timeout:g} s")

    def close(self) -> None:
        self.sock.close()


class PeakRss:
    """Peak resident memory: the kernel's high-water mark where there is one, else sampled."""

    def __init__(self, process):
        self.process = process
        self.sampled = 0

        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.sampled = max(self.sampled, self.process.memory_info().rss)
            except psutil.Error:  # the process ended
                return

    def peak_bytes(self) -> int:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
            return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024
        except (OSError, AttributeError):
            return self.sampled

    def stop(self) -> None:
        self._stop.set()


def idle_cpu_percent(process, seconds: float) -> float:
    """CPU time of the daemon (and any child) over a quiet stretch, in percent of one core."""
    def cpu() -> float:
        total = sum(process.cpu_times()[:2])
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a child that just ended
                total += sum(child.cpu_times()[:2])
        return total

    start_cpu, start = cpu(), time.monotonic()
    time.sleep(seconds)
    return round(100.0 * (cpu() - start_cpu) / (time.monotonic() - start), 2)


def measure(daemon_args: list[str], idle_s: float, question: Path) -> dict:
    from audio_harness import AssistantProcess, VirtualAudio, have_pulseaudio

    from Core.audio import load_audio, write_wav

    if not have_pulseaudio():
        raise LuxaError("bench_resources: PulseAudio tools missing (bash scripts/setup.sh --test)")
    with tempfile.TemporaryDirectory(prefix="luxa-res-") as tmp:
        work = Path(tmp)
        audio = VirtualAudio(work / "pulse")
        audio.start_noise_floor()
        notify = NotifyListener(work)
        luxa = None
        try:
            started = time.monotonic()
            luxa = AssistantProcess({**audio.env, "NOTIFY_SOCKET": str(notify.path)}, *daemon_args)
            process = psutil.Process(luxa.proc.pid)
            peak = PeakRss(process)
            ready_s = notify.wait_for("READY=1", timeout=300) - started
            luxa.wait_for("microphone open", timeout=60)
            loads = _load_seconds(luxa.lines)
            time.sleep(2.0)  # settle: the first frames, the endpointer's first allocations
            idle = idle_cpu_percent(process, idle_s)
            rss_idle = process.memory_info().rss
            wav = work / "question.wav"
            write_wav(wav, load_audio(question).to_rate(16000))
            audio.play_into_mic(wav).wait(timeout=60)
            luxa.wait_for(r"^luxa: ", timeout=120)
            time.sleep(0.5)
            report = {
                "cold_start_to_ready_s": round(ready_s, 2),
                "model_load_s": loads,
                "idle_listening_cpu_percent_of_one_core": idle, "idle_window_s": idle_s,
                "rss_idle_mb": round(rss_idle / 2**20, 1),
                "peak_rss_mb": round(peak.peak_bytes() / 2**20, 1),
                "threads": process.num_threads(), "open_files": len(process.open_files()),
            }
            peak.stop()
            stop_sent = time.monotonic()
            report["exit_code"] = luxa.stop(timeout=30)
            report["stop_s"] = round(time.monotonic() - stop_sent, 2)
        finally:
            if luxa is not None:
                luxa.kill()
            notify.close()
            audio.close()
    return report


def _load_seconds(lines: list[str]) -> dict[str, float]:
    """Assistant.load_seconds, as the daemon logs it: 'models ready: llm 1.96 s, tts 3.87 s, ...'."""
    for line in lines:
        if "models ready:" in line:
            return {name: float(value) for name, value in
                    re.findall(r"(\w+) ([\d.]+) s", line.split("models ready:", 1)[1])}
    return {}


def print_report(report: dict) -> None:
    r = report["resources"]
    print(describe_machine(report["machine"]))
    print("models: " + "; ".join(f"{k} {v}" for k, v in report["models"].items()))
    print(f"cold start to READY=1      {r['cold_start_to_ready_s']:.2f} s (page cache warm)")
    print("model load (concurrent)    " + ", ".join(f"{k} {v:.2f} s" for k, v in r["model_load_s"].items()))
    print(f"idle-listening CPU         {r['idle_listening_cpu_percent_of_one_core']:.1f} % of one core "
          f"over {r['idle_window_s']:g} s")
    print(f"RSS idle / peak            {r['rss_idle_mb']:.0f} MB / {r['peak_rss_mb']:.0f} MB (peak through one turn)")
    print(f"threads {r['threads']}, open files {r['open_files']}, SIGTERM -> exit {r['exit_code']} "
          f"in {r['stop_s']:.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="OUT", help="also write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="a 10 s idle window instead of 20 s")
    parser.add_argument("--idle-s", type=float, default=None, help="idle-listening window in seconds (default 20)")
    parser.add_argument("--corpus", default=str(default_corpus()))
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    from Config import load_config

    try:
        config = load_config(args.config, args.overrides)
        idle_s = args.idle_s if args.idle_s is not None else (10.0 if args.quick else 20.0)
        if idle_s <= 0:
            raise LuxaError("bench_resources: --idle-s must be positive")
        question = Path(args.corpus) / QUESTION
        if not question.is_file():
            raise LuxaError(f"bench_resources: {question} not found (use --corpus or LUXA_CORPUS)")
        daemon_args = ([f"--config={args.config}"] if args.config else []) + \
            [a for o in args.overrides for a in ("--set", o)]
        report = {"machine": machine(), "models": models(config)}
        report["resources"] = measure(daemon_args, idle_s, question)
    except (LuxaError, subprocess.TimeoutExpired, AssertionError) as err:
        print(f"bench_resources: error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 1)
    report["machine"]["load_average_end"] = load_average()
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
