"""The systemd notify protocol (sd_notify), spoken with a plain datagram socket.

systemd with `Type=notify` waits for READY=1 before it counts the service as started, shows the
STATUS= line in `systemctl status`, and with `WatchdogSec=` kills and restarts a service that
stops sending WATCHDOG=1. The pings come from a task on the daemon's own event loop: a loop
stalled by blocking code then stops pinging and systemd restarts the process, which a thread
pinging on its own would hide. A loop can also run while the work on it is stuck (a voice loop
whose microphone never returns): given a Heartbeat, the pings go out only while it beats.

Outside systemd (no NOTIFY_SOCKET) every call is a no-op, so the daemon calls it unconditionally.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def _socket_address(raw: str) -> str | None:
    """NOTIFY_SOCKET as a path for AF_UNIX; '@name' is a Linux abstract socket (leading NUL)."""
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    return None  # vsock: and other transports are for VMs; the assistant does not run in one


def _watchdog_usec(environ: Mapping[str, str], pid: int) -> int | None:
    """WATCHDOG_USEC if it is meant for this process (sd_watchdog_enabled semantics)."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    owner = environ.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != pid:
                return None  # inherited from a parent that is the one being watched
        except ValueError:
            return None
    return usec if usec > 0 else None


class Heartbeat:
    """When the watched work last made progress (a monotonic clock; tests give a fake one)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        self._last = self._clock()

    def age_s(self) -> float:
        return self._clock() - self._last


class SystemdNotifier:
    """Sends sd_notify messages; never raises, because a lost status line must not stop a turn."""

    def __init__(self, address: str | None, watchdog_s: float = 0.0) -> None:
        self._address = address
        self._watchdog_s = watchdog_s
        self._sock: socket.socket | None = None
        self._warned = False
        self._heartbeat: Heartbeat | None = None
        self._stuck = False

    @classmethod
    def from_env(cls, default_watchdog_s: float = 0.0,
                 environ: Mapping[str, str] | None = None) -> "SystemdNotifier":
        """Read NOTIFY_SOCKET / WATCHDOG_USEC / WATCHDOG_PID.

        `default_watchdog_s` (config.service.watchdog_s) is the interval when systemd did not
        set one. NOTIFY_SOCKET is left in the environment: the unit's NotifyAccess=main makes
        systemd ignore any child (piper, espeak) that inherits it.
        """
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        address = _socket_address(raw) if raw else None
        if raw and address is None:
            log.warning("NOTIFY_SOCKET=%s is not a unix socket; systemd notifications are off", raw)
        usec = _watchdog_usec(env, os.getpid())
        return cls(address, usec / 1_000_000 if usec else default_watchdog_s)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def watchdog_interval_s(self) -> float:
        """The watchdog timeout; 0 means no watchdog. Pings go out at half of it."""
        return self._watchdog_s

    def ready(self) -> None:
        self._send("READY=1")

    def status(self, text: str) -> None:
        # one message is newline-separated assignments: a newline in the text would end it
        self._send("STATUS=" + " ".join(text.split()))

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def watchdog_ping(self) -> None:
        self._send("WATCHDOG=1")

    def require_progress(self, heartbeat: Heartbeat) -> None:
        """From now on, ping only while `heartbeat` has beaten within the watchdog interval.

        Set once the work that beats it runs (not while the models load: that is not stuck)."""
        self._heartbeat = heartbeat

    def progressing(self, interval_s: float) -> bool:
        """True if a ping is deserved: no heartbeat is required, or it beat within `interval_s`."""
        if self._heartbeat is None:
            return True
        age = self._heartbeat.age_s()
        if (age > interval_s) != self._stuck:  # say it when it changes, not at every ping
            self._stuck = not self._stuck
            if self._stuck:
                log.error("no progress for %.0f s: watchdog pings stop (systemd will restart us)", age)
            else:
                log.warning("progress again: watchdog pings resume")
        return not self._stuck

    async def run_watchdog(self, interval_s: float | None = None) -> None:
        """Ping every `interval_s / 2` from this event loop until cancelled (while progressing)."""
        interval = self._watchdog_s if interval_s is None else interval_s
        if not self.enabled or interval <= 0:
            return
        while True:
            if self.progressing(interval):
                self.watchdog_ping()
            await asyncio.sleep(interval / 2)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # a full receive queue must drop a ping, not block the event loop
                self._sock.setblocking(False)
            self._sock.sendto(message.encode(), self._address)
        except OSError as err:
            if not self._warned:  # systemd gone or socket full: say it once, not every ping
                log.warning("systemd notify failed (%s): %s", message.split("=")[0], err)
                self._warned = True
