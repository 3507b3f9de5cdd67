"""Zeroconf discovery of Wyoming satellites (satellites.discovery, off by default).

wyoming-satellite advertises itself as `_wyoming._tcp` over mDNS unless started with
`--no-zeroconf` (wyoming.zeroconf.register_server: its name, its address, its port). Other
Wyoming programs (Piper, Whisper servers) advertise the same type, so a service found here is
asked `describe` and served only when its info names a satellite, as Home Assistant does.
The `zeroconf` package is optional (`pip install 'luxa[discovery]'`); without it discovery says
so in one line and the configured rooms are served as usual.
"""
from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)

SERVICE_TYPE = "_wyoming._tcp.local."
MISSING = "satellites.discovery: the zeroconf package is not installed (pip install 'luxa[discovery]'); " \
          "serving the rooms of satellites.rooms only"


def available() -> bool:
    try:
        import zeroconf  # noqa: F401
    except ImportError:
        return False
    return True


def room_name(service_name: str, taken: set[str]) -> str:
    """A room name (Config.schema.SatelliteRoom's pattern) from `kitchen._wyoming._tcp.local.`, unique among `taken`."""
    base = service_name.removesuffix("." + SERVICE_TYPE).removesuffix(SERVICE_TYPE)
    base = re.sub(r"[^A-Za-z0-9 _.-]", "_", base).strip(" _.-")[:56] or "satellite"
    if not base[0].isalnum():
        base = "s" + base
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


async def endpoint(uri: str) -> set[tuple[str, int]]:
    """The (address, port) pairs a configured URI reaches: a discovered satellite that is one of them
    is already served."""
    parsed = urlparse(uri)
    if parsed.scheme != "tcp" or parsed.hostname is None or parsed.port is None:
        return set()
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parsed.hostname, parsed.port, type=socket.SOCK_STREAM)
    except OSError:
        return {(parsed.hostname, parsed.port)}
    return {(str(info[4][0]), parsed.port) for info in infos} | {(parsed.hostname, parsed.port)}


Found = Callable[[str, str], Awaitable[None]]  # (service name, tcp://address:port)


class Browser:
    """Browses `_wyoming._tcp` and calls `found(service name, uri)` once per service and address."""

    def __init__(self, found: Found, resolve_timeout_s: float = 3.0) -> None:
        self._found = found
        self._timeout_ms = int(resolve_timeout_s * 1000)
        self._seen: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task] = set()
        self._zc: Any = None
        self._browser: Any = None

    async def start(self) -> None:
        from zeroconf import ServiceStateChange
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

        loop = asyncio.get_running_loop()

        def changed(zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange) -> None:
            if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
                # zeroconf calls this on the loop; resolving awaits, so it goes in a task
                task = loop.create_task(self._resolve(service_type, name), name=f"zeroconf {name}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self._zc = AsyncZeroconf()
        self._browser = AsyncServiceBrowser(self._zc.zeroconf, [SERVICE_TYPE], handlers=[changed])
        log.info("satellites: browsing for %s (zeroconf)", SERVICE_TYPE.removesuffix(".local."))

    async def _resolve(self, service_type: str, name: str) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self._zc.zeroconf, self._timeout_ms) or not info.port:
            log.info("satellites: %s did not say where it is", name)
            return
        addresses = info.parsed_addresses()
        if not addresses:
            return
        address = addresses[0]
        uri = f"tcp://[{address}]:{info.port}" if ":" in address else f"tcp://{address}:{info.port}"
        if (name, uri) in self._seen:
            return
        self._seen.add((name, uri))
        try:
            await self._found(name, uri)
        except Exception:  # one odd service must not stop the browsing
            log.exception("satellites: %s at %s", name, uri)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zc is not None:
            await self._zc.async_close()
        self._browser = self._zc = None
