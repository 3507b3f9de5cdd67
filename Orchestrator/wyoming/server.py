"""The Wyoming server inside the daemon's event loop: tcp, unix socket or stdio, on shared models.

`wyoming.server.AsyncServer.from_uri` opens the socket; every connection gets a LuxaEventHandler
on the one WyomingService (models, queue, conversations). Wyoming has no authentication, so a
tcp address other than loopback must be allowed in the config and is logged as a warning.
"""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast
from urllib.parse import urlparse

from wyoming.event import async_get_stdin
from wyoming.server import AsyncServer, AsyncStdioServer, AsyncTcpServer

from Config.schema import WyomingConfig
from Core.errors import ConfigError
from Core.net import is_loopback
from Orchestrator.wyoming.handler import LuxaEventHandler
from Orchestrator.wyoming.service import WyomingService

if TYPE_CHECKING:  # for mypy only: the daemon has loaded it; zeroconf is optional
    from wyoming.zeroconf import HomeAssistantZeroconf

    from Orchestrator.assistant import Assistant

log = logging.getLogger(__name__)


class WyomingHandle:
    """A running server: `url` is where it listens (the real port for tcp port 0)."""

    def __init__(self, server: AsyncServer, url: str, service: WyomingService) -> None:
        self.server = server
        self.url = url
        self.service = service
        self.finished = asyncio.Event()  # stdio: the client closed our stdin, there is nothing left to serve
        self._tasks: list[asyncio.Task] = []
        self._zeroconf: HomeAssistantZeroconf | None = None

    async def close(self) -> None:
        await self.server.stop()  # closes the listening socket and every connection
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._zeroconf is not None:
            await self._zeroconf._aiozc.async_close()


def check_uri(uri: str, allow_remote: bool) -> str:
    """The URI if it may be served; ConfigError naming the key otherwise."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("tcp", "unix", "stdio"):
        raise ConfigError(f"wyoming.uri {uri!r}: use tcp://HOST:PORT, unix://PATH or stdio://")
    if parsed.scheme != "tcp":
        return uri
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host = port = None
    if not host or port is None:
        raise ConfigError(f"wyoming.uri {uri!r}: a tcp URI needs a host and a port (tcp://127.0.0.1:10300)")
    if not is_loopback(host):
        if not allow_remote:
            raise ConfigError(f"wyoming.uri {uri!r} listens beyond this machine and Wyoming has no authentication: "
                              "set wyoming.allow_remote=true to allow it, or use tcp://127.0.0.1:PORT")
        log.warning("wyoming: listening on %s: any machine that reaches this address can use LUXA's models "
                    "(Wyoming has no authentication)", uri)
    return uri


def check_config(config: WyomingConfig, uri: str | None = None) -> str:
    """Everything that can fail before the models load: the URI, and zeroconf's package."""
    uri = check_uri(uri or config.uri, config.allow_remote)
    if config.zeroconf and importlib.util.find_spec("zeroconf") is None:  # wyoming.zeroconf needs it
        raise ConfigError("wyoming.zeroconf=true needs the zeroconf package: pip install zeroconf")
    return uri


async def start_wyoming(assistant: Assistant, config: WyomingConfig, uri: str | None = None,
                        local_busy: Callable[[], bool] | None = None) -> WyomingHandle:
    """`local_busy`: the voice loop is in a turn (its requests come first)."""
    uri = check_config(config, uri)
    service = WyomingService(assistant, config, local_busy)
    server = AsyncServer.from_uri(uri)
    if isinstance(server, AsyncStdioServer):
        handle = WyomingHandle(server, uri, service)
        handle._tasks.append(asyncio.create_task(_serve_stdio(service, handle.finished)))
        return handle
    await server.start(partial(LuxaEventHandler, service))
    url = uri
    if isinstance(server, AsyncTcpServer):
        url = f"tcp://{server.host}:{_bound_port(server)}"
    handle = WyomingHandle(server, url, service)
    if config.zeroconf:
        if isinstance(server, AsyncTcpServer):
            handle._zeroconf = await _announce(config, server)
        else:
            log.warning("wyoming: zeroconf announces tcp servers only; %s is not announced", url)
    log.info("wyoming: serving asr, tts and handle on %s", url)
    return handle


async def _serve_stdio(service: WyomingService, finished: asyncio.Event) -> None:
    """One client on stdin/stdout; our own handler loop (the package's stdio server bypasses it)."""
    loop = asyncio.get_running_loop()
    try:
        reader = await async_get_stdin()
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout)
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
        await LuxaEventHandler(service, reader, writer, cancel_on_eof=False).run()
    finally:
        finished.set()


def _bound_port(server: AsyncTcpServer) -> int:
    """The real port: the configured one, or the one the OS chose for port 0."""
    assert server._server is not None, "the server is started"
    return int(cast(asyncio.Server, server._server).sockets[0].getsockname()[1])


async def _announce(config: WyomingConfig, server: AsyncTcpServer) -> HomeAssistantZeroconf:
    from wyoming.zeroconf import HomeAssistantZeroconf

    host = None if is_loopback(server.host) or server.host in ("0.0.0.0", "::") else server.host
    announcer = HomeAssistantZeroconf(port=_bound_port(server), name=config.zeroconf_name, host=host)
    await announcer.register_server()
    log.info("wyoming: announced as %s._wyoming._tcp on %s", announcer.name, announcer.host)
    return announcer
