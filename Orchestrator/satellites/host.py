"""Every configured satellite served from the daemon's event loop; started by Orchestrator/service/daemon.py."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from Config.schema import SatellitesConfig
from Orchestrator.satellites.link import SatelliteLink
from Orchestrator.satellites.room import Models

if TYPE_CHECKING:
    from Orchestrator.assistant import Assistant

log = logging.getLogger(__name__)


class SatelliteHost:
    def __init__(self, assistant: Assistant, config: SatellitesConfig) -> None:
        models = Models(assistant)
        self.links = [SatelliteLink(room, config, models) for room in config.rooms]
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        for link in self.links:
            self._tasks.append(asyncio.create_task(link.run(), name=f"satellite {link.room.name}"))
        log.info("satellites: hosting %s", ", ".join(f"{x.room.name} ({x.room.uri})" for x in self.links))

    def states(self) -> dict[str, str]:
        return {link.room.name: link.state for link in self.links}

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


def start_satellites(assistant: Assistant, config: SatellitesConfig) -> SatelliteHost:
    if config.discovery:
        log.warning("satellites.discovery: zeroconf discovery is not available (the zeroconf package is not "
                    "installed and LUXA does not browse yet); list satellites in satellites.rooms")
    host = SatelliteHost(assistant, config)
    host.start()
    return host
