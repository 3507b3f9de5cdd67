"""`serve`: the daemon without audio devices, serving the control API (docs/API.md).

For a home-automation hub or a server with no microphone or speaker, and for the API tests:
the same models and service glue as the voice loop (systemd notify, metrics), the API forced
on, nothing opened on the sound card. The voice loop plus the API is the plain daemon with
api.enabled=true.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from Orchestrator.cli import Context


HELP = "run the daemon headless (no microphone or speaker) with the control API on; Ctrl-C stops"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    return None


async def run(args: argparse.Namespace, ctx: Context) -> int:
    from Orchestrator.api.security import server_key
    from Orchestrator.service.daemon import running

    cfg = ctx.config
    cfg.api.enabled = True
    server_key(cfg)  # a missing key off loopback stops us before seconds of model loading
    async with running(cfg, ctx.gpu, "serve") as daemon:
        daemon.state["state"] = "serving"
        daemon.notifier.ready()
        daemon.notifier.status(f"serving the control API on {daemon.api_url}")
        print(f"LUXA control API on {daemon.api_url} (Ctrl-C to stop)", flush=True)
        await daemon.stop.wait()
        return 0
