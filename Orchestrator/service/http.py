"""The daemon's one HTTP stack: ASGI apps served by uvicorn inside the daemon's own event loop.

GET /metrics (Prometheus) and GET /health (JSON) are a small FastAPI app on metrics.host:port;
the control API (Orchestrator.api) is another app served the same way on api.host:port. Serving
from the daemon's loop, not a thread or a second process, means a stalled loop also stops
answering, which is what a health check should see. The daemon owns the signals (SIGINT/SIGTERM
stop everything in order), so uvicorn's own signal capture is switched off, and uvicorn leaves
the daemon's logging configuration alone.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI, Request, Response
from prometheus_client.exposition import choose_encoder
from starlette.types import ASGIApp

from Config.schema import MetricsConfig
from Core import metrics
from Core.errors import LuxaError
from Core.net import is_loopback
from Orchestrator.service.process_metrics import register_process_metrics

log = logging.getLogger(__name__)

HealthFn = Callable[[], dict | Awaitable[dict]]

# Protocol and shutdown limits, not tuning knobs: requests on loopback arrive at once.
KEEP_ALIVE_S = 5
SHUTDOWN_GRACE_S = 5
NO_STORE = {"Cache-Control": "no-store"}


class _DaemonServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon's handlers stay in place


@dataclass
class ServerHandle:
    server: uvicorn.Server
    task: asyncio.Task
    host: str
    port: int  # the bound port: the configured one, or the one the OS chose for port 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Finish the responses in flight (up to a grace period), then stop."""
        self.server.should_exit = True
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE_S + 1.0):
                await asyncio.shield(self.task)
        except TimeoutError:
            self.server.force_exit = True
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def serve(app: ASGIApp, host: str, port: int, what: str, hint: str) -> ServerHandle:
    """Serve `app` on host:port until `await handle.close()`; a busy port is one line naming `hint`."""
    sock = _bind(host, port, what, hint)
    uv_config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", server_header=False,
                               timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    server = _DaemonServer(uv_config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=what)
    while not server.started:
        if task.done():
            sock.close()
            raise LuxaError(f"cannot serve {what} on {host}:{port}: {task.exception() or 'stopped'}")
        await asyncio.sleep(0.01)
    return ServerHandle(server, task, host, sock.getsockname()[1])


def _bind(host: str, port: int, what: str, hint: str) -> socket.socket:
    """Bind here, not in uvicorn: a busy port becomes one clear line instead of a sys.exit."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host, port), family=family)
    except OSError as err:
        raise LuxaError(f"cannot serve {what} on {host}:{port}: {err.strerror or err} ({hint})") from None
    sock.setblocking(False)
    return sock


def metrics_response(request: Request) -> Response:
    """The registry in the format the client asked for: Prometheus sends OpenMetrics in Accept,
    curl and browsers get the plain text format."""
    encode, media_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(metrics.REGISTRY), media_type=media_type, headers=NO_STORE)


def metrics_app(health: HealthFn) -> FastAPI:
    """Read-only, no key: what a Prometheus scrape and a service check need."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    async def health_report() -> Response:
        status = 200
        try:
            report = health()
            if inspect.isawaitable(report):
                report = await report
        except Exception as err:  # a broken health callback must still answer, and say why
            log.exception("health report failed")
            status, report = 500, {"state": "error", "error": f"{type(err).__name__}: {err}"}
        return Response(json.dumps(report, default=str), status, NO_STORE, "application/json")

    app.add_api_route("/metrics", metrics_response, methods=["GET", "HEAD"])
    app.add_api_route("/health", health_report, methods=["GET", "HEAD"])
    return app


async def start_http(metrics_config: MetricsConfig, health: HealthFn) -> ServerHandle:
    """Serve /metrics and /health on metrics_config.host:port until `await handle.close()`."""
    host, port = metrics_config.host, metrics_config.port
    if not is_loopback(host):
        log.warning("metrics and /health are served on %s, reachable from other machines "
                    "(read-only, no authentication)", host)
    register_process_metrics()
    handle = await serve(metrics_app(health), host, port, "metrics", "set metrics.port or metrics.enabled=false")
    log.info("metrics on %s/metrics, health on %s/health", handle.url, handle.url)
    return handle
