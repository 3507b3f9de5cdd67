"""service.nice: the daemon moves itself to the configured niceness, or says why it cannot."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from Core.niceness import set_niceness

pytestmark = pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no niceness on this OS")
REPO = Path(__file__).resolve().parents[2]


IMPORTS = "import logging, os; logging.basicConfig(level=logging.INFO); from Core.niceness import set_niceness; "
NICE_NOW = "os.getpriority(os.PRIO_PROCESS, 0)"


def _in_a_child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", IMPORTS + code], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_process_moves_to_the_niceness_asked_for():
    done = _in_a_child(f"print(set_niceness(7), {NICE_NOW})")
    assert done.stdout.split() == ["7", "7"], done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become an unprivileged user")
def test_a_refused_niceness_is_one_line_and_the_process_goes_on():
    done = _in_a_child(f"os.setuid(65534); print(set_niceness(-10), {NICE_NOW})")  # nobody may not lower it
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0"]
    assert "running at niceness 0: -10 was refused" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_same_niceness_is_left_as_it_is():
    assert set_niceness(os.getpriority(os.PRIO_PROCESS, 0)) == os.getpriority(os.PRIO_PROCESS, 0)


def test_every_command_runs_at_the_configured_niceness():
    """run_assistant.py's entry point applies service.nice before the command runs (a raise is always allowed)."""
    done = _in_a_child("from Orchestrator import cli; from Orchestrator.commands import devices; "
                       f"devices.run = lambda args, ctx: print('nice', {NICE_NOW}) or 0; "
                       "cli.main(['--set', 'service.nice=6', 'devices'])")
    assert "nice 6" in done.stdout, done.stderr
