"""The child runner behind the Windows service, exercised with real child processes on Linux."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

from Orchestrator.service.supervisor import rotating_logger, run_child

STOP_TIMEOUT_S = 30.0  # a hang guard; the children below stop at once when asked

GRACEFUL = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: (print("stopping", flush=True), sys.exit(0)))
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""

STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def _stop_when_ready(log_path: Path, stop: threading.Event) -> threading.Thread:
    def watch() -> None:
        while not stop.is_set():
            if log_path.exists() and "ready" in log_path.read_text():
                stop.set()
            stop.wait(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_stop_request_ends_the_daemon_gracefully_and_its_output_is_logged(tmp_path):
    log_path = tmp_path / "logs" / "luxa-service.log"
    stop = threading.Event()
    _stop_when_ready(log_path, stop)
    outcome = run_child([sys.executable, "-c", GRACEFUL], stop, rotating_logger("t1", str(log_path), 4096, 2),
                        STOP_TIMEOUT_S)
    assert outcome.stopped_by_request and outcome.exit_code == 0 and not outcome.failed
    assert outcome.tail == ("ready", "stopping")
    assert log_path.read_text().splitlines()[-1].endswith(" stopping")


def test_a_daemon_that_ignores_the_stop_request_is_killed_after_the_timeout(tmp_path):
    log_path = tmp_path / "svc.log"
    stop = threading.Event()
    _stop_when_ready(log_path, stop)
    outcome = run_child([sys.executable, "-c", STUBBORN], stop, rotating_logger("t2", str(log_path), 4096, 2), 0.5)
    assert outcome.stopped_by_request and outcome.exit_code < 0
    assert "did not stop within 0.5s: killed" in log_path.read_text()


def test_a_daemon_that_dies_on_its_own_is_a_failure_with_its_last_lines(tmp_path):
    code = "import sys\nfor i in range(30): print('line', i)\nsys.exit(3)"
    outcome = run_child([sys.executable, "-c", code], threading.Event(),
                        rotating_logger("t3", str(tmp_path / "svc.log"), 4096, 2), STOP_TIMEOUT_S)
    assert outcome.failed and outcome.exit_code == 3
    assert len(outcome.tail) == 20 and outcome.tail[-1] == "line 29"


def test_the_service_log_rotates_at_the_configured_size(tmp_path):
    code = "for i in range(400): print('x' * 60, i)"
    log_path = tmp_path / "svc.log"
    run_child([sys.executable, "-c", code], threading.Event(), rotating_logger("t4", str(log_path), 2048, 2),
              STOP_TIMEOUT_S)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["svc.log", "svc.log.1", "svc.log.2"]
    assert all(p.stat().st_size <= 2048 for p in tmp_path.iterdir())
    assert log_path.read_text().splitlines()[-1].endswith(" 399")
