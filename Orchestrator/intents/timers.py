"""Timers that ring on time and survive a restart of the daemon (kept in the state directory)."""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from Core.files import atomic_write

log = logging.getLogger(__name__)

# a timer that ended while the daemon was down is still announced if it ended this recently
LATE_RING_S = 3600.0


@dataclass
class Timer:
    id: str
    duration_s: float
    language: str
    name: str | None = None
    ends_at: float | None = None  # wall clock (epoch s) while running
    left_s: float | None = None  # while paused

    def remaining(self) -> float:
        if self.ends_at is None:
            return self.left_s or 0.0
        return max(0.0, self.ends_at - time.time())


Ring = Callable[[Timer], None]


class Timers:
    def __init__(self, path: Path, max_s: float) -> None:
        self.path = path
        self.max_s = max_s
        self.timers: dict[str, Timer] = {}
        self.listeners: list[Ring] = []
        self.unannounced: list[Timer] = []  # done before anyone listened (a timer that ended while LUXA was down)
        self._tasks: dict[str, asyncio.Task] = {}
        self._ids = itertools.count(1)

    async def start(self) -> None:
        """Reload the timers of the last run; those that ended while it was down ring now."""
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else []
            loaded = [Timer(**item) for item in saved]
        except (OSError, ValueError, TypeError) as err:
            log.warning("timers: %s is unreadable (%s); starting without saved timers", self.path, err)
            loaded = []
        for timer in loaded:
            if timer.ends_at is not None and time.time() - timer.ends_at > LATE_RING_S:
                log.info("timers: %s ended long before this start; dropped", timer.id)
                continue
            self.timers[timer.id] = timer
            self._schedule(timer)
        self._ids = itertools.count(1 + max((int(t.id) for t in self.timers.values() if t.id.isdigit()), default=0))
        if self.timers:
            log.info("timers: %d restored from %s", len(self.timers), self.path)
        self._save()

    def add(self, duration_s: float, language: str, name: str | None = None) -> Timer:
        timer = Timer(str(next(self._ids)), duration_s, language, name, ends_at=time.time() + duration_s)
        self.timers[timer.id] = timer
        self._schedule(timer)
        self._save()
        return timer

    def find(self, duration_s: float | None = None, name: str | None = None) -> list[Timer]:
        """The timers a sentence refers to: by name, by its set duration, else the latest one."""
        timers = sorted(self.timers.values(), key=lambda t: int(t.id) if t.id.isdigit() else 0)
        if name:
            return [t for t in timers if (t.name or "").lower() == name.lower()]
        if duration_s is not None:
            return [t for t in timers if abs(t.duration_s - duration_s) < 0.5]
        return timers[-1:]

    def cancel(self, timer: Timer) -> None:
        self.timers.pop(timer.id, None)
        task = self._tasks.pop(timer.id, None)
        if task is not None:
            task.cancel()
        self._save()

    def pause(self, timer: Timer) -> None:
        if timer.ends_at is not None:
            timer.left_s, timer.ends_at = timer.remaining(), None
            task = self._tasks.pop(timer.id, None)
            if task is not None:
                task.cancel()
            self._save()

    def resume(self, timer: Timer) -> None:
        if timer.ends_at is None:
            timer.ends_at, timer.left_s = time.time() + (timer.left_s or 0.0), None
            self._schedule(timer)
            self._save()

    def adjust(self, timer: Timer, delta_s: float) -> None:
        if timer.ends_at is None:
            timer.left_s = max(0.0, (timer.left_s or 0.0) + delta_s)
        else:
            timer.ends_at = max(time.time(), timer.ends_at + delta_s)
            self._schedule(timer)
        self._save()

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _schedule(self, timer: Timer) -> None:
        old = self._tasks.pop(timer.id, None)
        if old is not None:
            old.cancel()
        if timer.ends_at is not None:
            self._tasks[timer.id] = asyncio.create_task(self._wait(timer), name=f"timer-{timer.id}")

    async def _wait(self, timer: Timer) -> None:
        await asyncio.sleep(timer.remaining())
        self._tasks.pop(timer.id, None)
        self.timers.pop(timer.id, None)
        self._save()
        log.info("timers: timer %s (%g s) is done", timer.id, timer.duration_s)
        if not self.listeners:
            self.unannounced.append(timer)
        self._ring(timer)

    def listen(self, ring: Ring) -> None:
        """Call `ring(timer)` for each timer that is done, starting with those no one heard yet."""
        self.listeners.append(ring)
        waiting, self.unannounced = self.unannounced, []
        for timer in waiting:
            self._ring(timer)

    def _ring(self, timer: Timer) -> None:
        for ring in list(self.listeners):
            try:
                ring(timer)
            except Exception as err:  # one broken listener must not silence the others
                log.error("timers: announcing timer %s failed: %s", timer.id, err)

    def _save(self) -> None:
        try:
            with atomic_write(self.path, 0o600, text=True) as out:
                json.dump([asdict(t) for t in self.timers.values()], out)
        except OSError as err:
            log.warning("timers: cannot save to %s (%s); they will not survive a restart", self.path, err)
