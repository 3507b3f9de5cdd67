"""Logging set-up: readable in a terminal, one line per event under a service (journald)."""
from __future__ import annotations

import logging
import logging.handlers
import sys

TERMINAL_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
SERVICE_FORMAT = "%(levelname)s %(name)s turn=%(turn_id)s %(message)s"


class _TurnIdFilter(logging.Filter):
    """Adds the current turn id (set by the orchestrator) to every record."""

    current = "-"

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "turn_id"):
            record.turn_id = _TurnIdFilter.current
        return True


def set_turn_id(turn_id: str) -> None:
    _TurnIdFilter.current = turn_id


def setup_logging(level: str = "INFO", fmt: str = "auto", file: str | None = None,
                  file_max_bytes: int = 10 * 1024 * 1024, file_backups: int = 3) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    line_mode = fmt == "line" or (fmt == "auto" and not sys.stderr.isatty())
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(SERVICE_FORMAT if line_mode else TERMINAL_FORMAT, "%H:%M:%S"))
    handlers: list[logging.Handler] = [console]
    if file:
        rotating = logging.handlers.RotatingFileHandler(file, maxBytes=file_max_bytes, backupCount=file_backups)
        rotating.setFormatter(logging.Formatter("%(asctime)s " + SERVICE_FORMAT))
        handlers.append(rotating)
    for handler in handlers:
        handler.addFilter(_TurnIdFilter())
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("faster_whisper", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
