"""Uvicorn inside the daemon's event loop, as a task beside the voice loop (not a second process).

The daemon owns the signals (SIGINT/SIGTERM stop everything in order), so uvicorn's own signal
capture is switched off, and uvicorn leaves the daemon's logging configuration alone.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from Config.schema import LuxaConfig
from Core.errors import LuxaError
from Orchestrator.api.app import create_app
from Orchestrator.api.security import server_key

log = logging.getLogger(__name__)

# Protocol and shutdown limits, not tuning knobs: requests on loopback arrive at once.
KEEP_ALIVE_S = 5
SHUTDOWN_GRACE_S = 5.0


class _DaemonServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        yield  # the daemon's handlers stay in place


@dataclass
class ApiHandle:
    server: uvicorn.Server
    task: asyncio.Task
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Finish the responses in flight (up to a grace period), then stop."""
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), SHUTDOWN_GRACE_S + 1.0)
        except (asyncio.TimeoutError, TimeoutError):
            self.server.force_exit = True
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def start_api(assistant, config: LuxaConfig, state: Callable[[], dict]) -> ApiHandle:
    """Serve the control API on api.host:port until `await handle.close()`."""
    api = config.api
    key, key_file = server_key(config)
    sock = _bind(api.host, api.port)
    app = create_app(assistant, api, key, state)
    uv_config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", server_header=False,
                               timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    server = _DaemonServer(uv_config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="control-api")
    while not server.started:
        if task.done():
            sock.close()
            raise LuxaError(f"control API did not start: {task.exception() or 'stopped'}")
        await asyncio.sleep(0.01)
    handle = ApiHandle(server, task, api.host, sock.getsockname()[1])
    log.info("control API on %s (key in %s)", handle.url, key_file)
    return handle


def _bind(host: str, port: int) -> socket.socket:
    """Bind here, not in uvicorn: a busy port becomes one clear line instead of a sys.exit."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host, port), family=family)
    except OSError as err:
        raise LuxaError(f"cannot serve the control API on {host}:{port}: {err.strerror or err} "
                        "(set api.port, or api.enabled=false)") from None
    sock.setblocking(False)
    return sock
