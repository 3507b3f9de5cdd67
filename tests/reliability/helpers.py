"""What the reliability tests share: resource snapshots, a controllable clock, a clocked assistant.

The managers take an injectable clock for their breakers; the Assistant builds them with the
real one, so ClockedAssistant passes a FakeClock through. That lets a test say "the cooldown
has passed" without sleeping through it.
"""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from Core.memory import anonymous_mb
from Orchestrator.assistant import Assistant

MB = 2 ** 20


ClockedAssistant = Assistant  # the real Assistant; its `clock` drives the three managers' breakers


@dataclass(frozen=True)
class Resources:
    """What a leak would make grow: private memory, open files, threads, temporary files.

    A leak grows anonymous memory. RSS also counts the pages of memory-mapped model files
    (llama.cpp maps the GGUF), which the kernel drops and maps back with the page cache: on a
    machine short of memory RSS moves by tens of MB with nothing leaked, so `anon_mb` is judged."""

    rss_mb: float
    anon_mb: float  # RssAnon: the process's own heap and anonymous mappings
    fds: int
    threads: int
    temp_files: int

    def __str__(self) -> str:
        return (f"RSS {self.rss_mb:7.1f} MB (anonymous {self.anon_mb:7.1f})  fds {self.fds:3d}  "
                f"threads {self.threads:3d}  temp files {self.temp_files}")


# Allowed drift between the level after warm-up and the end of a soak. Thread pools and the
# allocator settle during warm-up; what is left is noise of a few MB and at most a worker or two.
RSS_GROWTH_MAX_MB = 50.0
FD_DRIFT_MAX = 2
THREAD_DRIFT_MAX = 2


def measure(pid: int, temp_dir: Path) -> Resources:
    proc = psutil.Process(pid)
    temp_files = sum(len(files) + len(dirs) for _, dirs, files in os.walk(temp_dir))
    rss = proc.memory_info().rss / MB
    anon = anonymous_mb(pid)
    return Resources(rss, rss if anon is None else anon, proc.num_fds(), proc.num_threads(), temp_files)


SETTLE_S = 1.0
SETTLE_EVERY_S = 0.1


def measure_settled(pid: int, temp_dir: Path) -> Resources:
    """The lowest reading over a second after a turn: the daemon gives the turn's freed buffers
    back (malloc_trim) on a worker thread after the turn's last log line, and a reading taken
    before that saw up to 140 MB that was already free. No line marks the trim, so the snapshot
    is polled; a leak raises the floor, which this still sees."""
    readings = []
    deadline = time.monotonic() + SETTLE_S
    while True:
        readings.append(measure(pid, temp_dir))
        if time.monotonic() >= deadline:
            return min(readings, key=lambda r: r.anon_mb)
        time.sleep(SETTLE_EVERY_S)


def assert_flat(warm: Resources, end: Resources, max_growth_mb: float = RSS_GROWTH_MAX_MB) -> None:
    growth = end.anon_mb - warm.anon_mb
    assert growth < max_growth_mb, (f"anonymous memory grew by {growth:.1f} MB (allowed < {max_growth_mb:g} MB); "
                                        f"RSS {warm.rss_mb:.1f} -> {end.rss_mb:.1f} MB")
    assert abs(end.fds - warm.fds) <= FD_DRIFT_MAX, f"open files {warm.fds} -> {end.fds}"
    assert abs(end.threads - warm.threads) <= THREAD_DRIFT_MAX, f"threads {warm.threads} -> {end.threads}"
    assert end.temp_files <= warm.temp_files, f"temporary files {warm.temp_files} -> {end.temp_files}"


async def run_with_deadline(coro, seconds: float, what: str):
    """Hang detection only: generous, never a latency assertion."""
    try:
        return await asyncio.wait_for(coro, seconds)
    except TimeoutError:  # asyncio's is the builtin since Python 3.11
        raise AssertionError(f"{what} hung for more than {seconds:g} s") from None
