"""`satellites`: the configured Wyoming satellites (satellites.rooms) and whether each answers now.

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

HELP = "list the configured Wyoming satellites (satellites.rooms) and whether each is reachable"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for each satellite (default 3)")


async def probe(room: SatelliteRoom, timeout: float, max_bytes: int) -> str:
    """'reachable: <what it says it is>' or 'unreachable: <why>'."""
    from wyoming.event import async_write_event
    from wyoming.info import Describe, Info

    from Orchestrator.satellites.link import open_connection
    from Orchestrator.wyoming.wire import BadFrame, read_event

    try:
        reader, writer = await open_connection(room.uri, timeout)
    except (OSError, asyncio.TimeoutError, TimeoutError) as err:
        return f"unreachable: {err or type(err).__name__}"
    try:
        await async_write_event(Describe().event(), writer)
        while (event := await asyncio.wait_for(read_event(reader, max_bytes), timeout)) is not None:
            if Info.is_type(event.type):  # read by hand: satellites speak older Wyoming versions
                sat = (event.data or {}).get("satellite")
                if not isinstance(sat, dict):
                    return "reachable, but not a satellite (its info lists no satellite)"
                area = f", area {sat['area']}" if sat.get("area") else ""
                return f"reachable: satellite {sat.get('name')!r}{area}"
        return "unreachable: closed the connection without an answer"
    except (asyncio.TimeoutError, TimeoutError):
        return f"unreachable: no answer to describe within {timeout:g} s"
    except (BadFrame, OSError) as err:
        return f"unreachable: {err}"
    finally:
        writer.close()


async def run(args: argparse.Namespace, ctx: Context) -> int:
    cfg = ctx.config.satellites
    if cfg.discovery:
        print("discovery: on in the config, but not available (zeroconf is not installed; list satellites in "
              "satellites.rooms)")
    else:
        print("discovery: off (satellites.discovery)")
    if not cfg.rooms:
        print("no satellites configured: add satellites.rooms, e.g. "
              "--set 'satellites.rooms=[{name: kitchen, uri: \"tcp://kitchen.local:10700\"}]'")
        return 0
    states = await asyncio.gather(*(probe(room, args.timeout, cfg.max_event_bytes) for room in cfg.rooms))
    width = max(len(room.name) for room in cfg.rooms)
    for room, state in zip(cfg.rooms, states):
        print(f"{room.name:<{width}}  {room.uri}  {state}")
    return 0
