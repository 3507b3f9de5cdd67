"""The real daemon (all models loaded, typed-input mode) speaks the notify protocol to systemd."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _messages(sock: socket.socket, until: str, deadline_s: float) -> list[str]:
    seen: list[str] = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            seen.append(sock.recv(4096).decode())
        except socket.timeout:
            continue
        if until in seen[-1]:
            return seen
    raise AssertionError(f"no {until!r} within {deadline_s:g} s; got {seen}")


def test_the_daemon_sends_ready_watchdog_pings_and_stopping(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(1.0)
    env = {k: v for k, v in os.environ.items() if not (k.startswith("LUXA_") and "__" in k)}
    env.update({"NOTIFY_SOCKET": path, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "PULSE_SERVER": ""})
    daemon = subprocess.Popen([sys.executable, "run_assistant.py", "--text", "--set", "service.watchdog_s=1"],
                              cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        before_ready = _messages(sock, "READY=1", 180)
        pings = [m for m in _messages(sock, "WATCHDOG=1", 10) if m == "WATCHDOG=1"]
        pings += [m for m in _messages(sock, "WATCHDOG=1", 10) if m == "WATCHDOG=1"]
        daemon.send_signal(signal.SIGTERM)
        after = _messages(sock, "STOPPING=1", 30)
        assert daemon.wait(timeout=30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        sock.close()
    assert any(m.startswith("STATUS=loading") for m in before_ready), before_ready
    assert len(pings) >= 2
    assert "STOPPING=1" in after
