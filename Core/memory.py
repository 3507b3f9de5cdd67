"""Bound the C heap of a long-running process: fewer glibc malloc arenas, free pages given back.

glibc gives each thread that allocates its own arena (up to 8 per core), and an arena keeps
the memory it grew to. LUXA's native libraries (CTranslate2, onnxruntime, llama.cpp, PortAudio)
allocate from worker and callback threads, so the daemon's RSS climbed in steps of 50-100 MB as
new threads took new arenas: 919 -> 1127 MB over 60 voice turns through the virtual microphone.
Two arenas is what MALLOC_ARENA_MAX=2 gives many Python servers for the same reason; inference
threads rarely contend on malloc. Set through mallopt at start-up, before any worker thread
exists, so that it holds however LUXA is launched; an explicit MALLOC_ARENA_MAX wins.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h


@functools.cache  # find_library runs `ldconfig -p` in a child process: once, not after every turn
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def limit_malloc_arenas(arenas: int) -> bool:
    """True when the limit was set; 0 leaves glibc's default. A no-op off glibc (macOS, Windows, musl)."""
    libc = _glibc()
    if arenas <= 0 or os.environ.get("MALLOC_ARENA_MAX") or libc is None:
        return False
    try:
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except AttributeError:  # not glibc: it has no mallopt, and no per-thread arenas to bound
        log.debug("mallopt is not available; malloc arenas left as they are")
        return False


def release_free_heap() -> bool:
    """Give the heap's free pages back to the system (glibc's malloc_trim); True when some were.

    A turn's large temporary buffers (log-mel windows, STFTs, decoder scratch) are freed into the
    arenas, which glibc keeps mapped and fragmented between turns; trimmed after each turn, the
    daemon's RSS follows what it uses. Blocking, a few milliseconds: call it off the event loop."""
    libc = _glibc()
    try:
        return bool(libc.malloc_trim(0)) if libc is not None else False
    except AttributeError:  # not glibc
        return False


def anonymous_mb(pid: int | str = "self") -> float | None:
    """A process's private memory (RssAnon, MB): what a leak grows. RSS also counts the pages of
    memory-mapped model files, which the kernel drops and maps back. None off Linux."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return None
