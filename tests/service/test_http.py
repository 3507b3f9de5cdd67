"""/metrics and /health over real HTTP on 127.0.0.1 (uvicorn), served from the test's event loop."""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import urllib.error
import urllib.request
from email.message import Message

import pytest
import pytest_asyncio

from Config.schema import MetricsConfig
from Core import metrics
from Core.errors import LuxaError
from Core.net import is_loopback
from Orchestrator.service.http import start_http

def free_port_config(host: str = "127.0.0.1", port: int = 0) -> MetricsConfig:
    """Port 0 (the OS picks a free one) is not a valid config value; tests need it to run in parallel."""
    return MetricsConfig.model_construct(enabled=True, host=host, port=port)


HEALTH = {"state": "listening", "stt": {"whisper_base": "closed"}, "tts": {"piper_native": "open"},
          "models": ["whisper-base"], "audio": {"input": "vmic", "output": "vspeaker"}}


def _get(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
    """The response headers as received: their names are case-insensitive."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


async def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None):
    """A blocking client in a thread: the server runs on this loop and must keep serving."""
    return await asyncio.to_thread(_get, url, method, headers)


@pytest_asyncio.fixture(loop_scope="function")  # the server must live on the test's own loop
async def server():
    handle = await start_http(free_port_config(), lambda: HEALTH)
    yield handle
    await handle.close()


async def test_metrics_serves_the_luxa_registry_with_process_metrics(server):
    metrics.counter("luxa_test_http_requests_total", "a metric only this test creates").inc(3)
    status, headers, body = await fetch(server.url + "/metrics")
    text = body.decode()
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=")
    assert "luxa_test_http_requests_total 3.0" in text
    assert "process_resident_memory_bytes" in text
    assert 'luxa_build_info{platform="linux"' in text


async def test_metrics_speaks_openmetrics_when_the_scraper_asks_for_it(server):
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    status, headers, body = await fetch(server.url + "/metrics", headers={"Accept": accept})
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


async def test_health_returns_the_callable_report_as_json(server):
    status, headers, body = await fetch(server.url + "/health")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == HEALTH


async def test_a_head_request_gets_headers_without_a_body(server):
    status, headers, body = await fetch(server.url + "/health", "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


async def test_unknown_path_is_404_and_post_is_405(server):
    assert (await fetch(server.url + "/nope"))[0] == 404
    status, headers, _ = await fetch(server.url + "/metrics", "POST")
    assert status == 405 and set(headers["Allow"].split(", ")) == {"GET", "HEAD"}


async def test_garbage_request_line_gets_400(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"hello\r\n\r\n")
    await writer.drain()
    reply = await reader.read()
    writer.close()
    assert reply.startswith(b"HTTP/1.1 400 ")


async def test_an_async_health_callable_is_awaited():
    async def health() -> dict:
        await asyncio.sleep(0)
        return {"state": "speaking"}

    handle = await start_http(free_port_config(), health)
    try:
        assert json.loads((await fetch(handle.url + "/health"))[2]) == {"state": "speaking"}
    finally:
        await handle.close()


async def test_a_failing_health_callable_answers_500_with_the_reason():
    def health() -> dict:
        raise RuntimeError("manager not started")

    handle = await start_http(free_port_config(), health)
    try:
        status, _, body = await fetch(handle.url + "/health")
    finally:
        await handle.close()
    assert status == 500
    assert json.loads(body) == {"state": "error", "error": "RuntimeError: manager not started"}


async def test_a_port_in_use_is_a_one_line_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LuxaError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            await start_http(free_port_config("127.0.0.1", port), lambda: {})


async def test_a_non_loopback_address_is_allowed_with_a_warning(caplog):
    caplog.set_level(logging.WARNING)
    handle = await start_http(free_port_config("0.0.0.0", 0), lambda: {"state": "ok"})
    try:
        assert (await fetch(f"http://127.0.0.1:{handle.port}/health"))[0] == 200
    finally:
        await handle.close()
    assert "reachable from other machines" in caplog.text


def test_loopback_addresses_are_recognised():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.10", "::", "example.org"))


async def test_close_stops_serving(server):
    url = server.url
    await server.close()
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(urllib.request.urlopen, url + "/health", None, 5)
