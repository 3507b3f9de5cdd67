"""`wyoming [--uri URI]`: LUXA as Home Assistant's speech-to-text, text-to-speech and conversation agent.

Headless like `serve`: the same models and service glue (systemd notify, metrics), no sound card,
the Wyoming server (Orchestrator/wyoming, docs/WYOMING.md) forced on. With wyoming.enabled=true
the voice loop and `serve` run the same server beside their own work.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from Orchestrator.cli import Context

HELP = "run a headless Wyoming server (asr, tts, handle) for Home Assistant; Ctrl-C stops"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--uri", default=None,
                        help="tcp://HOST:PORT, unix://PATH or stdio:// (default wyoming.uri, tcp://127.0.0.1:10300)")


async def run(args: argparse.Namespace, ctx: Context) -> int:
    from Orchestrator.service.daemon import running
    from Orchestrator.wyoming.server import check_config

    uri = check_config(ctx.config.wyoming, args.uri)  # before seconds of model loading
    config = ctx.config.model_copy(update={"wyoming": ctx.config.wyoming.model_copy(update={"enabled": True, "uri": uri})})
    out = sys.stderr if uri.startswith("stdio:") else sys.stdout  # stdio: stdout carries the protocol
    async with running(config, ctx.gpu, "wyoming") as daemon:
        server = daemon.wyoming
        assert server is not None  # started by the daemon: wyoming.enabled is forced on above
        daemon.state["state"] = "serving"
        daemon.notifier.ready()
        daemon.notifier.status(f"serving Wyoming on {server.url}")
        print(f"LUXA Wyoming server on {server.url} (Ctrl-C to stop)", file=out, flush=True)
        stopper = asyncio.ensure_future(daemon.stop.wait())
        finished = asyncio.ensure_future(server.finished.wait())  # stdio: the client closed its input
        await asyncio.wait({stopper, finished}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (stopper, finished):
            waiter.cancel()
    return 0
