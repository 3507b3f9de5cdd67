"""The audio cache: hits, expiry by TTL, and a byte bound evicting the least recently used."""
from __future__ import annotations

import numpy as np

from Core.audio import Audio
from TTS.cache import AudioCache


def audio(n: int, value: float = 0.5) -> Audio:
    return Audio(np.full(n, value, np.float32), 22050)


def test_a_stored_entry_is_returned_and_cannot_be_modified(clock):
    cache = AudioCache(max_bytes=10_000, ttl_s=60, clock=clock)
    cache.put("k", audio(100), "piper_native")
    hit = cache.get("k")
    assert hit.backend == "piper_native" and len(hit.audio.samples) == 100
    assert not hit.audio.samples.flags.writeable
    assert cache.get("other") is None


def test_entries_expire_after_the_ttl(clock):
    cache = AudioCache(max_bytes=10_000, ttl_s=60, clock=clock)
    cache.put("k", audio(100), "x")
    clock.advance(59)
    assert cache.get("k") is not None
    clock.advance(2)
    assert cache.get("k") is None
    assert cache.bytes == 0 and len(cache) == 0


def test_byte_bound_evicts_least_recently_used(clock):
    cache = AudioCache(max_bytes=3 * 400, ttl_s=60, clock=clock)  # three entries of 100 float32
    for key in "abc":
        cache.put(key, audio(100), "x")
    cache.get("a")  # a becomes the most recently used; b is now the oldest
    cache.put("d", audio(100), "x")
    assert cache.get("b") is None
    assert all(cache.get(k) is not None for k in "acd")
    assert cache.bytes == 1200


def test_an_entry_larger_than_the_whole_cache_is_not_stored(clock):
    cache = AudioCache(max_bytes=400, ttl_s=60, clock=clock)
    cache.put("small", audio(50), "x")
    cache.put("huge", audio(1000), "x")
    assert cache.get("huge") is None and cache.get("small") is not None


def test_replacing_a_key_keeps_the_byte_count_right(clock):
    cache = AudioCache(max_bytes=10_000, ttl_s=60, clock=clock)
    cache.put("k", audio(100), "x")
    cache.put("k", audio(200), "y")
    assert cache.bytes == 800 and cache.get("k").backend == "y"
