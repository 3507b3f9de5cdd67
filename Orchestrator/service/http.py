"""GET /metrics (Prometheus) and GET /health (JSON) served from the daemon's own event loop.

A few lines of HTTP/1.1 on asyncio.start_server instead of a web framework: two read-only
endpoints, one request per connection, no dependency. Serving from the daemon's loop means a
stalled loop also stops answering, which is what a health check should see. The control API
(a later issue) brings its own server.
"""
from __future__ import annotations

import asyncio
import inspect
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client.exposition import choose_encoder

from Core import metrics
from Core.errors import LuxaError
from Orchestrator.service.process_metrics import register_process_metrics

log = logging.getLogger(__name__)

HealthFn = Callable[[], dict | Awaitable[dict]]

# Protocol limits, not tuning knobs: a scrape request is a few hundred bytes and arrives at once.
MAX_REQUEST_BYTES = 8192
REQUEST_TIMEOUT_S = 5.0
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 500: "Internal Server Error"}


@dataclass
class HttpHandle:
    server: asyncio.Server
    host: str
    port: int  # the bound port: the configured one, or the one the OS chose for port 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def start_http(metrics_config, health: HealthFn) -> HttpHandle:
    """Serve /metrics and /health on metrics_config.host:port until `await handle.close()`."""
    host, port = metrics_config.host, metrics_config.port
    if not is_loopback(host):
        log.warning("metrics and /health are served on %s, reachable from other machines "
                    "(read-only, no authentication)", host)
    register_process_metrics()

    async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _serve_one(reader, writer, health)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(serve_connection, host, port, limit=MAX_REQUEST_BYTES)
    except OSError as err:
        raise LuxaError(f"cannot serve metrics on {host}:{port}: {err.strerror or err} "
                        f"(set metrics.port or metrics.enabled=false)") from None
    handle = HttpHandle(server, host, server.sockets[0].getsockname()[1])
    log.info("metrics on %s/metrics, health on %s/health", handle.url, handle.url)
    return handle


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, health: HealthFn) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
    except asyncio.TimeoutError:
        return await _respond(writer, 408, b"request timeout\n")
    except asyncio.LimitOverrunError:
        return await _respond(writer, 400, b"request too large\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = request_line.split()
    headers = dict(_header(line) for line in header_lines if ":" in line)
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return await _respond(writer, 400, b"bad request line\n")
    method, target = parts[0], parts[1].split("?", 1)[0]
    if method not in ("GET", "HEAD"):
        return await _respond(writer, 405, b"only GET\n", extra={"Allow": "GET, HEAD"})
    send_body = method == "GET"
    if target == "/metrics":
        # Prometheus asks for OpenMetrics in Accept; curl and browsers get the plain text format
        encode, content_type = choose_encoder(headers.get("accept", ""))
        return await _respond(writer, 200, encode(metrics.REGISTRY), content_type, send_body)
    if target == "/health":
        status, body = await _health_body(health)
        return await _respond(writer, status, body, "application/json", send_body)
    await _respond(writer, 404, b"try /metrics or /health\n")


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


async def _health_body(health: HealthFn) -> tuple[int, bytes]:
    try:
        report = health()
        if inspect.isawaitable(report):
            report = await report
        return 200, json.dumps(report, default=str).encode()
    except Exception as err:  # a broken health callback must still answer, and say why
        log.exception("health report failed")
        return 500, json.dumps({"state": "error", "error": f"{type(err).__name__}: {err}"}).encode()


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes,
                   content_type: str = "text/plain; charset=utf-8", send_body: bool = True,
                   extra: dict[str, str] | None = None) -> None:
    headers = {"Content-Type": content_type, "Content-Length": str(len(body)),
               "Connection": "close", "Cache-Control": "no-store", **(extra or {})}
    head = f"HTTP/1.1 {status} {REASONS[status]}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(head.encode("latin-1") + b"\r\n" + (body if send_body else b""))
    await writer.drain()
