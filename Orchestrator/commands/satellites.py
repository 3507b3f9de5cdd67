"""`satellites`: the configured Wyoming satellites (satellites.rooms), with satellites.discovery those
that zeroconf finds too, and whether each answers now.

Each satellite is asked `describe` (which does not take it over: a running LUXA or Home Assistant
stays its pipeline host); no models are loaded. The daemon serves them when it runs (voice loop,
`serve`, `wyoming`), see docs/SATELLITES.md.
"""
from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from Config.schema import SatelliteRoom
    from Orchestrator.cli import Context

HELP = "list the configured (satellites.rooms) and discovered (satellites.discovery) Wyoming satellites and their state"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=3.0,
                        help="seconds to wait for each satellite, and to browse with satellites.discovery (default 3)")


async def probe(room: SatelliteRoom, timeout: float, max_bytes: int) -> str:
    """'reachable: <what it says it is>' or 'unreachable: <why>'."""
    from Orchestrator.satellites.link import describe
    from Orchestrator.wyoming.wire import BadFrame

    try:
        sat = await describe(room.uri, timeout, max_bytes)
    except TimeoutError:
        return f"unreachable: no answer to describe within {timeout:g} s"
    except (BadFrame, OSError) as err:  # ConnectionError is an OSError
        return f"unreachable: {err or type(err).__name__}"
    if sat is None:
        return "reachable, but not a satellite (its info lists no satellite)"
    area = f", area {sat['area']}" if sat.get("area") else ""
    return f"reachable: satellite {sat.get('name')!r}{area}"


async def discover(seconds: float) -> list[tuple[str, str]]:
    """(service name, uri) of every `_wyoming._tcp` service heard within `seconds`."""
    from Orchestrator.satellites.discovery import Browser

    found: list[tuple[str, str]] = []

    async def add(service: str, uri: str) -> None:
        found.append((service, uri))

    browser = Browser(add, seconds)
    try:
        await browser.start()
        await asyncio.sleep(seconds)
    finally:
        await browser.close()
    return found


async def run(args: argparse.Namespace, ctx: Context) -> int:
    from Config.schema import SatelliteRoom
    from Orchestrator.satellites import discovery

    cfg = ctx.config.satellites
    rooms: list[tuple[SatelliteRoom, str]] = [(room, "configured") for room in cfg.rooms]
    if not cfg.discovery:
        print("discovery: off (satellites.discovery)")
    elif not discovery.available():
        print(discovery.MISSING)
    else:
        found = await discover(args.timeout)
        print(f"discovery: {len(found)} Wyoming service(s) answered zeroconf within {args.timeout:g} s")
        configured = set().union(*[await discovery.endpoint(room.uri) for room in cfg.rooms])
        for service, uri in found:
            endpoint = await discovery.endpoint(uri)
            if endpoint & configured:
                continue  # listed in satellites.rooms
            name = discovery.room_name(service, {room.name for room, _ in rooms})
            rooms.append((SatelliteRoom(name=name, uri=uri), "discovered"))
    if not rooms:
        print("no satellites configured: add satellites.rooms, e.g. "
              "--set 'satellites.rooms=[{name: kitchen, uri: \"tcp://kitchen.local:10700\"}]'"
              + ("" if cfg.discovery else ", or turn on satellites.discovery"))
        return 0
    states = await asyncio.gather(*(probe(room, args.timeout, cfg.max_event_bytes) for room, _ in rooms))
    width = max(len(room.name) for room, _ in rooms)
    for (room, how), state in zip(rooms, states):
        print(f"{room.name:<{width}}  {how:<10}  {room.uri}  {state}")
    return 0
