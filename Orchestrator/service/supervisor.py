"""Run the daemon as a child process, copy its output to a rotating log, stop it on request.

The Windows service host uses this instead of running the daemon inside pythonservice.exe: the
daemon stays the same program as on Linux (its own interpreter, its own signal handling), and a
crash of the daemon is a service failure that Windows' recovery actions restart.
Only the standard library: the service host imports this module outside the package.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# what a daemon under a service manager gets on every platform: output not held in a buffer
# (journald / the log file see each line at once) and one log line per event with the turn id
SERVICE_ENVIRONMENT = {"PYTHONUNBUFFERED": "1", "LUXA_LOGGING__FORMAT": "line"}
# lines of the daemon's output quoted in the event log entry when it dies
TAIL_LINES = 20
# how often the host looks for a stop request or a dead child; well under any stop timeout
POLL_S = 0.2


@dataclass(frozen=True)
class ChildOutcome:
    exit_code: int
    stopped_by_request: bool
    tail: tuple[str, ...]

    @property
    def failed(self) -> bool:
        return not self.stopped_by_request and self.exit_code != 0


def rotating_logger(name: str, path: str, max_bytes: int, backups: int) -> logging.Logger:
    """A private logger (no propagation) writing the daemon's lines to a rotated file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    logger = logging.getLogger(f"luxa.service.{name}")
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


def _ask_to_stop(child: subprocess.Popen) -> None:
    if sys.platform == "win32":
        # the child runs in its own process group: CTRL_BREAK reaches it as SIGBREAK
        child.send_signal(signal.CTRL_BREAK_EVENT)
    else:
        child.terminate()


def run_child(command: Sequence[str], stop: threading.Event, log: logging.Logger,
              stop_timeout_s: float, env: dict[str, str] | None = None,
              on_start: Callable[[int], None] | None = None) -> ChildOutcome:
    """Run `command` until it exits or `stop` is set; then ask it to stop, and kill it after the timeout."""
    flags = 0
    if sys.platform == "win32":
        flags = subprocess.CREATE_NEW_PROCESS_GROUP
    child = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, creationflags=flags,
                             text=True, encoding="utf-8", errors="replace")
    if on_start:
        on_start(child.pid)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    copier = threading.Thread(target=_copy_lines, args=(child, log, tail), daemon=True)
    copier.start()
    while child.poll() is None and not stop.wait(POLL_S):
        pass
    requested = stop.is_set() and child.poll() is None
    if requested:
        _ask_to_stop(child)
        try:
            child.wait(stop_timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("daemon did not stop within %gs: killed", stop_timeout_s)
            child.kill()
            child.wait()
    copier.join(timeout=5)
    return ChildOutcome(child.returncode, requested, tuple(tail))


def _copy_lines(child: subprocess.Popen, log: logging.Logger, tail: deque) -> None:
    assert child.stdout is not None  # run_child opens it as a pipe
    for line in child.stdout:
        line = line.rstrip("\r\n")
        tail.append(line)
        log.info("%s", line)

