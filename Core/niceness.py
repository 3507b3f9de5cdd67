"""Let the voice win the CPU: the daemon's scheduling priority (service.nice).

On two cores beside three busy processes, a turn at the default niceness got a fifth of the CPU
each: end of speech -> first reply audio p50 1730 ms, p95 2380 ms in `bench turn`; at -10 it was
968 / 1295 ms, about what a quiet machine gives (docs/BENCHMARKS.md, "Answering sooner"). Audio
servers do the same for their threads (PipeWire and PulseAudio ask for -11 or real time).
"""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def set_niceness(target: int) -> int | None:
    """Move this process to niceness `target` (-20 most favoured .. 19); the niceness it runs at,
    or None where the OS has no niceness (Windows). Lowering it needs root, CAP_SYS_NICE or an
    RLIMIT_NICE that allows it: when refused, one line says so and the process runs on as it was."""
    if not hasattr(os, "getpriority"):
        return None
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if current == target:
        return current
    try:
        os.setpriority(os.PRIO_PROCESS, 0, target)
    except OSError as err:
        log.info("running at niceness %d: %d was refused (%s); a voice turn shares the CPU evenly with other "
                 "work (service.nice; the system service sets it through systemd)", current, target, err.strerror)
        return current
    return target
