"""Core.logs as a service uses it: one line per event with the turn id, and a rotated log file."""
from __future__ import annotations

import logging

import pytest

from Core.logs import set_turn_id, setup_logging


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    set_turn_id("-")


def test_line_format_puts_one_event_per_line_with_the_turn_id(restore_logging, capsys):
    setup_logging("INFO", "line")
    set_turn_id("t42")
    logging.getLogger("luxa.test").info("reply spoken")
    assert capsys.readouterr().err == "INFO luxa.test turn=t42 reply spoken\n"


def test_the_log_file_rotates_and_keeps_the_configured_number_of_backups(restore_logging, tmp_path):
    path = tmp_path / "luxa.log"
    setup_logging("INFO", "line", str(path), file_max_bytes=1024, file_backups=2)
    log = logging.getLogger("luxa.test")
    for i in range(200):
        log.info("event %03d %s", i, "x" * 40)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["luxa.log", "luxa.log.1", "luxa.log.2"]
    assert all(p.stat().st_size <= 1024 for p in tmp_path.iterdir())
    last = path.read_text().splitlines()[-1]
    assert "turn=- event 199" in last and last[:4].isdigit()  # the file adds the date


def test_auto_format_is_one_line_per_event_when_stderr_is_not_a_terminal(restore_logging, capsys):
    setup_logging("INFO", "auto")
    logging.getLogger("luxa.test").warning("no terminal here")
    assert capsys.readouterr().err == "WARNING luxa.test turn=- no terminal here\n"
