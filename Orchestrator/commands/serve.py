"""`serve`: the daemon without audio devices, serving the control API (docs/API.md).

For a home-automation hub or a server with no microphone or speaker, and for the API tests:
the same models and service glue as the voice loop (systemd notify, metrics), the API forced
on, nothing opened on the sound card. The voice loop plus the API is the plain daemon with
api.enabled=true.
"""
from __future__ import annotations

import asyncio

HELP = "run the daemon headless (no microphone or speaker) with the control API on; Ctrl-C stops"


def add_arguments(parser) -> None:
    return None


async def run(args, ctx) -> int:
    from Orchestrator.api.security import server_key
    from Orchestrator.api.server import start_api
    from Orchestrator.assistant import Assistant
    from Orchestrator.commands.listen import install_stop_signals
    from Orchestrator.service.http import start_http
    from Orchestrator.service.notify import SystemdNotifier

    cfg = ctx.config
    cfg.api.enabled = True
    server_key(cfg)  # a missing key off loopback stops us before seconds of model loading
    stop = asyncio.Event()
    install_stop_signals(stop)
    notifier = SystemdNotifier.from_env(cfg.service.watchdog_s)
    watchdog = asyncio.create_task(notifier.run_watchdog())
    state = {"mode": "serve", "state": "loading models"}
    notifier.status(state["state"])
    assistant = Assistant(cfg, ctx.gpu)
    handles = []
    try:
        await assistant.start()
        if cfg.metrics.enabled:
            handles.append(await start_http(cfg.metrics, lambda: {**state, "stages": assistant.health()}))
        api = await start_api(assistant, cfg, lambda: dict(state))
        handles.append(api)
        if cfg.wyoming.enabled:
            from Orchestrator.wyoming.server import start_wyoming

            handles.append(await start_wyoming(assistant, cfg.wyoming))
        state["state"] = "serving"
        notifier.ready()
        notifier.status(f"serving the control API on {api.url}")
        print(f"LUXA control API on {api.url} (Ctrl-C to stop)", flush=True)
        await stop.wait()
        return 0
    finally:
        notifier.stopping()
        watchdog.cancel()
        for handle in reversed(handles):  # the API first: no request may start on closing models
            await handle.close()
        await assistant.close()
        notifier.close()
