"""One lifecycle for the voice loop and headless `serve`: what starts, and the order it stops in.

Both modes are the same daemon: stop signals, systemd notify and watchdog, the models loaded
once, metrics and the control API when configured. Only what runs in between differs (the
microphone loop, typed questions, or waiting for requests). The stop order matters: the speaker
and the servers first, so no request starts on models being closed; the models last.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from Config.schema import LuxaConfig
from Core.gpu import GpuStatus
from Orchestrator.assistant import Assistant
from Orchestrator.service.notify import SystemdNotifier

if TYPE_CHECKING:
    from Orchestrator.satellites.host import SatelliteHost
    from Orchestrator.wyoming.server import WyomingHandle

log = logging.getLogger(__name__)


@dataclass
class Daemon:
    assistant: Assistant
    notifier: SystemdNotifier
    stop: asyncio.Event
    state: dict[str, str]  # what /health and the API report: mode and current state
    api_url: str | None = None
    wyoming: WyomingHandle | None = None
    satellites: SatelliteHost | None = None
    _closers: list[Callable[[], Awaitable[None] | None]] = field(default_factory=list)

    def on_stop(self, close: Callable[[], Awaitable[None] | None]) -> None:
        """Called at the stop, the latest registered first, before the models close."""
        self._closers.append(close)


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM (and SIGBREAK, how the Windows service stops us) end the daemon cleanly."""
    loop = asyncio.get_running_loop()
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows event loops have no signal handlers
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))


@contextlib.asynccontextmanager
async def running(config: LuxaConfig, gpu: GpuStatus, mode: str) -> AsyncIterator[Daemon]:
    """The models loaded and the servers up; on exit everything closed in order, whatever happened."""
    stop = asyncio.Event()
    install_stop_signals(stop)
    notifier = SystemdNotifier.from_env(config.service.watchdog_s)
    watchdog = asyncio.create_task(notifier.run_watchdog())
    daemon = Daemon(Assistant(config, gpu), notifier, stop, {"mode": mode, "state": "loading models"})
    notifier.status(daemon.state["state"])
    try:
        await daemon.assistant.start()
        await _start_servers(daemon, config)
        yield daemon
    finally:
        notifier.stopping()
        watchdog.cancel()
        for close in reversed(daemon._closers):
            done = close()
            if inspect.isawaitable(done):
                await done
        await daemon.assistant.close()
        notifier.close()


async def _start_servers(daemon: Daemon, config: LuxaConfig) -> None:
    # imported only when on: FastAPI and uvicorn cost start-up time the plain voice loop does not need
    assistant, state = daemon.assistant, daemon.state
    if config.metrics.enabled:
        from Orchestrator.service.http import start_http

        daemon.on_stop((await start_http(config.metrics, lambda: {**state, "stages": assistant.health()})).close)
    if config.api.enabled:
        from Orchestrator.api.server import start_api

        api = await start_api(assistant, config, lambda: dict(state))
        daemon.on_stop(api.close)
        daemon.api_url = api.url
    if config.wyoming.enabled:  # Home Assistant's protocol beside the voice loop or the API
        from Orchestrator.wyoming.server import start_wyoming

        daemon.wyoming = await start_wyoming(assistant, config.wyoming,
                                             local_busy=lambda: state.get("state") in ("thinking", "speaking"))
        daemon.on_stop(daemon.wyoming.close)
    if config.satellites.rooms or config.satellites.discovery:  # LUXA as the pipeline host of Wyoming satellites
        from Orchestrator.satellites.host import start_satellites

        daemon.satellites = start_satellites(assistant, config.satellites)
        daemon.on_stop(daemon.satellites.close)
