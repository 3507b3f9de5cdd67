"""Every configured (and, with satellites.discovery, discovered) satellite served from the daemon's
event loop; started by Orchestrator/service/daemon.py."""
from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from Config.schema import SatelliteRoom, SatellitesConfig
from Core.net import is_loopback
from Orchestrator.satellites import discovery
from Orchestrator.satellites.link import SatelliteLink, describe
from Orchestrator.satellites.room import Models
from Orchestrator.wyoming.wire import BadFrame

if TYPE_CHECKING:
    from Orchestrator.assistant import Assistant

log = logging.getLogger(__name__)


class SatelliteHost:
    def __init__(self, assistant: Assistant, config: SatellitesConfig) -> None:
        self.config = config
        self.models = Models(assistant)
        self.links = [SatelliteLink(room, config, self.models) for room in config.rooms]
        self._tasks: list[asyncio.Task] = []
        self._browser: discovery.Browser | None = None

    def start(self) -> None:
        for link in self.links:
            self._serve(link)
        if self.links:
            log.info("satellites: hosting %s", ", ".join(f"{x.room.name} ({x.room.uri})" for x in self.links))
        if self.config.discovery:
            if discovery.available():
                self._browser = discovery.Browser(self.found, self.config.connect_timeout_s)
                self._tasks.append(asyncio.create_task(self._browse(self._browser), name="satellites zeroconf"))
            else:
                log.warning(discovery.MISSING)

    async def _browse(self, browser: discovery.Browser) -> None:
        try:
            await browser.start()
        except (OSError, RuntimeError) as err:  # no interface to send mDNS on: the configured rooms still work
            log.warning("satellites.discovery: zeroconf could not start: %s", err)

    def _serve(self, link: SatelliteLink) -> None:
        self._tasks.append(asyncio.create_task(link.run(), name=f"satellite {link.room.name}"))

    async def found(self, service: str, uri: str) -> None:
        """A `_wyoming._tcp` service: served as a room when it is a satellite no link serves yet."""
        if await self._served(uri):
            log.info("satellites: %s at %s is already served", service, uri)
            return
        try:
            sat = await describe(uri, self.config.connect_timeout_s, self.config.max_event_bytes)
        except (OSError, TimeoutError, BadFrame) as err:
            log.info("satellites: %s at %s does not answer describe (%s)", service, uri, err or type(err).__name__)
            return
        if sat is None:
            log.info("satellites: %s at %s is a Wyoming service, not a satellite", service, uri)
            return
        if await self._served(uri):  # found again (another address) while it was asked
            return
        room = SatelliteRoom(name=discovery.room_name(service, {x.room.name for x in self.links}), uri=uri)
        link = SatelliteLink(room, self.config, self.models)
        link.discovered = True
        self.links.append(link)
        log.info("satellites: discovered %s at %s (zeroconf %s)", room.name, uri, service)
        self._serve(link)

    async def _served(self, uri: str) -> bool:
        """Whether a link already serves `uri`'s address and port (a loopback URI serves this machine's
        own addresses: a satellite on the host advertises its network address)."""
        found = urlparse(uri)
        for link in self.links:
            for address, port in await discovery.endpoint(link.room.uri):
                if port == found.port and (address == found.hostname or
                                           (is_loopback(address) and _is_local(found.hostname or ""))):
                    return True
        return False

    def states(self) -> dict[str, str]:
        return {link.room.name: link.state for link in self.links}

    async def close(self) -> None:
        if self._browser is not None:
            await self._browser.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


def _is_local(address: str) -> bool:
    """True for an address of this machine (it can be bound to)."""
    try:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((address, 0))
        return True
    except OSError:
        return False


def start_satellites(assistant: Assistant, config: SatellitesConfig) -> SatelliteHost:
    host = SatelliteHost(assistant, config)
    host.start()
    return host
