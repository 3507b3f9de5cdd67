"""The malloc arena limit is set once at start-up, and never against the user's own setting."""
from __future__ import annotations

import sys

import pytest

from Core.memory import limit_malloc_arenas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_arena_limit_is_set_through_glibc(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas(2) is True


def test_zero_keeps_glibc_default_and_an_explicit_environment_wins(monkeypatch):
    assert limit_malloc_arenas(0) is False
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_pages_go_back_to_the_system():
    import ctypes
    import ctypes.util

    import psutil

    from Core.memory import release_free_heap

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    process = psutil.Process()
    # 80 MB in 4 KiB blocks (below the mmap threshold, so from the heap); the last one stays, so the
    # heap cannot shrink from its top, as in a daemon whose later allocations outlive a turn's buffers
    blocks = [libc.malloc(4096) for _ in range(20_000)]
    for block in blocks:
        ctypes.memset(block, 1, 4096)
    for block in blocks[:-1]:
        libc.free(block)
    held = process.memory_info().rss
    assert release_free_heap() is True
    released = held - process.memory_info().rss
    libc.free(blocks[-1])
    assert released > 40e6, f"{released / 1e6:.1f} MB given back"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trimming_after_each_turn_starts_no_process(monkeypatch):
    """Finding libc runs `ldconfig -p`: once per process, not once per turn (the soak saw its pipes)."""
    import subprocess

    from Core.memory import release_free_heap

    release_free_heap()

    def no_child(*args, **kwargs):
        raise AssertionError(f"a child process was started: {args[0]!r}")

    monkeypatch.setattr(subprocess, "Popen", no_child)
    release_free_heap()
