"""LRU cache of synthesised audio, bounded in bytes and by age.

An assistant says the same short things again and again ("Sorry, I did not catch that",
confirmations); a hit skips synthesis entirely. Bounded in bytes because audio entries differ
a thousandfold in size, so a count bound would say nothing about memory.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable

from Core.audio import Audio
from Core.metrics import counter, gauge

HITS = counter("luxa_tts_cache_hits_total", "TTS cache hits")
MISSES = counter("luxa_tts_cache_misses_total", "TTS cache misses")
BYTES = gauge("luxa_tts_cache_bytes", "bytes of audio held by the TTS cache")


@dataclass(frozen=True)
class CacheEntry:
    audio: Audio
    backend: str
    stored_at: float


class AudioCache:
    def __init__(self, max_bytes: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[Hashable, CacheEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # the bench and a control API may touch it from threads

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self._clock() - entry.stored_at > self.ttl_s:
                self._drop(key)
                entry = None
            if entry is None:
                MISSES.inc()
                return None
            self._entries.move_to_end(key)
            HITS.inc()
            return entry

    def put(self, key: Hashable, audio: Audio, backend: str) -> None:
        size = audio.samples.nbytes
        if size > self.max_bytes:
            return  # one entry larger than the whole cache would evict everything for nothing
        samples = audio.samples.copy()
        samples.flags.writeable = False  # hits share the array: no consumer may change it
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = CacheEntry(Audio(samples, audio.sample_rate), backend, self._clock())
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))  # least recently used first
            BYTES.set(self._bytes)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            BYTES.set(0)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.audio.samples.nbytes
        BYTES.set(self._bytes)
