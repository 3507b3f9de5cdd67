"""`wyoming [--uri URI]`: LUXA as Home Assistant's speech-to-text, text-to-speech and conversation agent.

Headless like `serve`: the same models and service glue (systemd notify, metrics), no sound card,
the Wyoming server (Orchestrator/wyoming, docs/WYOMING.md) forced on. With wyoming.enabled=true
the voice loop and `serve` run the same server beside their own work.
"""
from __future__ import annotations

import asyncio
import sys

HELP = "run a headless Wyoming server (asr, tts, handle) for Home Assistant; Ctrl-C stops"


def add_arguments(parser) -> None:
    parser.add_argument("--uri", default=None,
                        help="tcp://HOST:PORT, unix://PATH or stdio:// (default wyoming.uri, tcp://127.0.0.1:10300)")


async def run(args, ctx) -> int:
    from Orchestrator.assistant import Assistant
    from Orchestrator.commands.listen import install_stop_signals
    from Orchestrator.service.http import start_http
    from Orchestrator.service.notify import SystemdNotifier
    from Orchestrator.wyoming.server import check_config, start_wyoming

    cfg = ctx.config
    uri = check_config(cfg.wyoming, args.uri)  # before seconds of model loading
    out = sys.stderr if uri.startswith("stdio:") else sys.stdout  # stdio: stdout carries the protocol
    stop = asyncio.Event()
    install_stop_signals(stop)
    notifier = SystemdNotifier.from_env(cfg.service.watchdog_s)
    watchdog = asyncio.create_task(notifier.run_watchdog())
    state = {"mode": "wyoming", "state": "loading models"}
    notifier.status(state["state"])
    assistant = Assistant(cfg, ctx.gpu)
    handles: list = []  # anything with `async close()`
    try:
        await assistant.start()
        if cfg.metrics.enabled:
            handles.append(await start_http(cfg.metrics, lambda: {**state, "stages": assistant.health()}))
        server = await start_wyoming(assistant, cfg.wyoming, uri)
        handles.append(server)
        state["state"] = "serving"
        notifier.ready()
        notifier.status(f"serving Wyoming on {server.url}")
        print(f"LUXA Wyoming server on {server.url} (Ctrl-C to stop)", file=out, flush=True)
        stopper = asyncio.ensure_future(stop.wait())
        finished = asyncio.ensure_future(server.finished.wait())
        await asyncio.wait({stopper, finished}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (stopper, finished):
            waiter.cancel()
        return 0
    finally:
        notifier.stopping()
        watchdog.cancel()
        for handle in reversed(handles):  # the server first: no request may start on closing models
            await handle.close()
        await assistant.close()
        notifier.close()
