"""The systemd notify protocol: parsing the environment, and the datagrams a process really sends."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from Orchestrator.service.notify import Heartbeat, SystemdNotifier
from tests.fakes import FakeClock

RECEIVE_TIMEOUT_S = 30.0  # a hang guard only; nothing here measures time


def test_without_notify_socket_every_call_is_a_silent_no_op():
    notifier = SystemdNotifier.from_env(default_watchdog_s=30.0, environ={})
    assert not notifier.enabled
    notifier.ready()
    notifier.status("listening")
    notifier.watchdog_ping()
    notifier.stopping()
    assert notifier.watchdog_interval_s() == 30.0


def test_watchdog_interval_comes_from_watchdog_usec_for_this_process():
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}
    assert SystemdNotifier.from_env(default_watchdog_s=30.0, environ=env).watchdog_interval_s() == 20.0


def test_watchdog_usec_meant_for_another_process_is_ignored():
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert SystemdNotifier.from_env(default_watchdog_s=30.0, environ=env).watchdog_interval_s() == 30.0


def test_invalid_watchdog_usec_falls_back_to_the_config_value():
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "soon"}
    assert SystemdNotifier.from_env(default_watchdog_s=12.0, environ=env).watchdog_interval_s() == 12.0


def test_a_socket_that_is_not_unix_disables_notifications(caplog):
    notifier = SystemdNotifier.from_env(environ={"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    assert "not a unix socket" in caplog.text


def _bind(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(RECEIVE_TIMEOUT_S)
    return sock


def test_messages_reach_a_path_socket(tmp_path: Path):
    path = str(tmp_path / "notify.sock")
    with _bind(path) as receiver:
        notifier = SystemdNotifier.from_env(environ={"NOTIFY_SOCKET": path})
        notifier.ready()
        notifier.status("loading\nmodels")
        notifier.stopping()
        notifier.close()
        got = [receiver.recv(4096).decode() for _ in range(3)]
    # a newline would end the assignment early: the status stays one line
    assert got == ["READY=1", "STATUS=loading models", "STOPPING=1"]


def test_messages_reach_an_abstract_socket():
    name = f"luxa-test-{uuid.uuid4().hex}"
    with _bind("\0" + name) as receiver:
        notifier = SystemdNotifier.from_env(environ={"NOTIFY_SOCKET": "@" + name})
        notifier.watchdog_ping()
        notifier.close()
        assert receiver.recv(4096) == b"WATCHDOG=1"


def test_a_vanished_socket_is_reported_once_and_never_raises(tmp_path: Path, caplog):
    notifier = SystemdNotifier.from_env(environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    for _ in range(3):
        notifier.watchdog_ping()
    assert caplog.text.count("systemd notify failed") == 1


async def test_run_watchdog_returns_at_once_when_there_is_no_watchdog(tmp_path: Path):
    notifier = SystemdNotifier(str(tmp_path / "n.sock"), watchdog_s=0.0)
    await asyncio.wait_for(notifier.run_watchdog(), RECEIVE_TIMEOUT_S)


def test_pings_are_deserved_only_while_the_heartbeat_beat_within_the_interval(caplog):
    clock = FakeClock()
    heartbeat = Heartbeat(clock)
    notifier = SystemdNotifier("/run/x", watchdog_s=10.0)
    clock.advance(60.0)
    assert notifier.progressing(10.0)  # nothing required yet: loading models is not being stuck
    notifier.require_progress(heartbeat)
    assert not notifier.progressing(10.0)
    heartbeat.beat()
    clock.advance(10.0)
    assert notifier.progressing(10.0)
    clock.advance(0.1)
    assert not notifier.progressing(10.0)
    assert not notifier.progressing(10.0)
    heartbeat.beat()
    assert notifier.progressing(10.0)
    # said when it changes, not at every check
    assert caplog.text.count("watchdog pings stop") == 2
    assert caplog.text.count("watchdog pings resume") == 2


async def test_run_watchdog_holds_its_pings_while_the_heartbeat_is_stale(tmp_path: Path):
    clock = FakeClock()
    heartbeat = Heartbeat(clock)
    path = str(tmp_path / "notify.sock")
    with _bind(path) as receiver:
        receiver.setblocking(False)
        notifier = SystemdNotifier(path, watchdog_s=0.2)
        notifier.require_progress(heartbeat)
        clock.advance(1.0)
        watchdog = asyncio.create_task(notifier.run_watchdog())
        loop = asyncio.get_running_loop()
        try:
            with pytest.raises(TimeoutError):  # five chances to ping, at 0.1 s each
                await asyncio.wait_for(loop.sock_recv(receiver, 4096), 0.5)
            heartbeat.beat()
            assert await asyncio.wait_for(loop.sock_recv(receiver, 4096), RECEIVE_TIMEOUT_S) == b"WATCHDOG=1"
        finally:
            watchdog.cancel()
            notifier.close()


class NotifyListener:
    """A datagram socket standing in for systemd, and the program under test."""

    def __init__(self, tmp_path: Path, repo_root: Path, watchdog_usec: int, stall_s: float = 1.0):
        self.path = str(tmp_path / "notify.sock")
        self.sock = _bind(self.path)
        env = {**os.environ, "NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": str(watchdog_usec),
               "PYTHONPATH": str(repo_root)}
        env.pop("WATCHDOG_PID", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.service.notify_program", str(stall_s)],
                                     cwd=repo_root, env=env)
        self.messages: list[str] = []

    def until(self, predicate) -> list[str]:
        while not predicate(self.messages):
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pytest.fail(f"no further notify message; got {self.messages[-10:]}")
        return self.messages

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.sock.close()


@pytest.fixture
def listener(tmp_path, repo_root):
    made = []

    def start(**kw) -> NotifyListener:
        made.append(NotifyListener(tmp_path, repo_root, **kw))
        return made[-1]

    yield start
    for item in made:
        item.close()


def test_a_process_sends_ready_then_periodic_watchdog_then_stopping_on_sigterm(listener):
    program = listener(watchdog_usec=200_000)
    program.until(lambda m: m.count("WATCHDOG=1") >= 3)
    program.proc.send_signal(signal.SIGTERM)
    messages = program.until(lambda m: "STOPPING=1" in m)
    assert program.proc.wait(RECEIVE_TIMEOUT_S) == 0
    assert messages.index("READY=1") < messages.index("STOPPING=1")
    assert "STATUS=listening" in messages
    assert messages[-1] == "STOPPING=1"


def test_a_stalled_event_loop_stops_the_watchdog_pings(listener):
    # pings every 0.1 s; the loop is blocked for 1.5 s, long enough for 15 pings if a thread sent them
    program = listener(watchdog_usec=200_000, stall_s=1.5)
    program.until(lambda m: m.count("WATCHDOG=1") >= 2)
    program.proc.send_signal(signal.SIGUSR1)
    messages = program.until(lambda m: "STATUS=stall over" in m
                             and "WATCHDOG=1" in m[m.index("STATUS=stall over"):])
    during = messages[messages.index("STATUS=stalling"):messages.index("STATUS=stall over")]
    assert "WATCHDOG=1" not in during
    program.proc.send_signal(signal.SIGTERM)
    program.until(lambda m: "STOPPING=1" in m)
