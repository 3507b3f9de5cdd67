"""The connection to one satellite: connect, `run-satellite`, read its events; reconnect with back-off.

wyoming-satellite is the server: LUXA connects to it as Home Assistant does. Events are read with
the Wyoming server's bounded reader (Orchestrator/wyoming/wire.py): a satellite that sends
garbage is cut off with a logged reason, and so is one that starts a pipeline and then goes
silent for `stall_timeout_s` (a network that dropped without a word); both are then retried
with back-off like a satellite that went away. TCP keepalive notices a dead peer between turns.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import urlparse

from wyoming.event import Event, async_write_event
from wyoming.satellite import RunSatellite

from Config.schema import SatelliteRoom, SatellitesConfig
from LLM.conversation import Conversation
from Orchestrator.satellites.metrics import CONNECTED, CONNECTS
from Orchestrator.satellites.room import CutOff, Models, RoomSession
from Orchestrator.wyoming.wire import BadFrame, read_event

log = logging.getLogger(__name__)


async def open_connection(uri: str, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parsed = urlparse(uri)
    if parsed.scheme == "unix":
        opening = asyncio.open_unix_connection(parsed.path)
    else:
        opening = asyncio.open_connection(parsed.hostname, parsed.port)
    async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancel that lands as it ends
        reader, writer = await opening
    _keepalive(writer)
    return reader, writer


async def describe(uri: str, timeout: float, max_bytes: int) -> dict | None:
    """The satellite part of what `uri` says it is (`describe` -> `info`), None when it is a Wyoming
    service but no satellite. Asking does not take a satellite over. Raises OSError, TimeoutError,
    BadFrame, or ConnectionError when it closes without an answer."""
    from wyoming.info import Describe, Info

    reader, writer = await open_connection(uri, timeout)
    try:
        await async_write_event(Describe().event(), writer)
        while True:
            async with asyncio.timeout(timeout):
                event = await read_event(reader, max_bytes)
            if event is None:
                break
            if Info.is_type(event.type):  # read by hand: satellites speak older Wyoming versions
                sat = (event.data or {}).get("satellite")
                return sat if isinstance(sat, dict) else None
        raise ConnectionError("closed the connection without an answer")
    finally:
        writer.close()


def _keepalive(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):  # Linux names
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


class SatelliteLink:
    """One room: its conversation outlives connections; `state` is what `satellites` and logs show."""

    def __init__(self, room: SatelliteRoom, config: SatellitesConfig, models: Models) -> None:
        self.room = room
        self.config = config
        self.models = models
        self.conversation: Conversation = models.assistant.llm.new_conversation()
        self.state = "connecting"
        self.connections = 0
        self.discovered = False  # found by zeroconf (satellites.discovery), not listed in satellites.rooms
        self.last_error: str | None = None
        self.session: RoomSession | None = None
        CONNECTED.labels(room.name).set(0)

    def _set_state(self, state: str) -> None:
        self.state = state

    async def run(self) -> None:
        """Forever: connect, serve, wait (back-off), again. Cancelled by the host's close()."""
        failures = 0
        while True:
            served = await self._connect_and_serve()
            failures = 0 if served else failures + 1
            delay = min(self.config.reconnect_initial_s * 2 ** max(0, failures - 1), self.config.reconnect_max_s)
            self.state = "retrying"
            log.info("satellite %s: reconnecting in %.2f s", self.room.name, delay)
            await asyncio.sleep(delay)

    async def _connect_and_serve(self) -> bool:
        """True when the satellite ran a pipeline on this connection (the back-off starts over)."""
        name = self.room.name
        self.state = "connecting"
        try:
            reader, writer = await open_connection(self.room.uri, self.config.connect_timeout_s)
        except (OSError, TimeoutError) as err:
            self.last_error = str(err) or type(err).__name__
            CONNECTS.labels(name, "failed").inc()
            log.info("satellite %s: cannot connect to %s: %s", name, self.room.uri, self.last_error)
            return False
        CONNECTS.labels(name, "ok").inc()
        CONNECTED.labels(name).set(1)
        self.connections += 1
        self.state = "connected"
        log.info("satellite %s: connected to %s", name, self.room.uri)

        async def send(event: Event) -> None:
            await async_write_event(event, writer)

        session = self.session = RoomSession(name, self.models, self.conversation, self.room.language, send,
                                             self.config.audio_chunk_ms, self.config.max_bad_events, self._set_state,
                                             self.config.barge_in)
        try:
            await send(RunSatellite().event())
            await self._read(reader, session)
        except CutOff as err:
            self.last_error = str(err)
            log.warning("satellite %s: cut off: %s", name, err)
        except (ConnectionError, OSError) as err:
            self.last_error = str(err) or type(err).__name__
            log.warning("satellite %s: connection lost: %s", name, self.last_error)
        finally:
            CONNECTED.labels(name).set(0)
            self.session = None
            await session.close()
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        return session.pipeline is not None

    async def _read(self, reader: asyncio.StreamReader, session: RoomSession) -> None:
        while True:
            # a satellite that streams owes us audio; one whose turn is being answered may be quiet
            timeout = self.config.stall_timeout_s if session.listening and session.turn is None else None
            try:
                async with asyncio.timeout(timeout):  # None: no limit
                    event = await read_event(reader, self.config.max_event_bytes)
            except TimeoutError:
                raise CutOff(f"no event for {timeout:g} s while streaming (satellites.stall_timeout_s)") from None
            except BadFrame as err:
                raise CutOff(f"malformed event: {err}") from None
            if event is None:
                self.last_error = "the satellite closed the connection"
                log.warning("satellite %s: disconnected", self.room.name)
                return
            await session.handle(event)
