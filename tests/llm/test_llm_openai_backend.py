"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 that fails, then recovers."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from Config.schema import LlmBackendConfig
from LLM import EnhancedLLMManager
from LLM.backends.openai_compat import OpenAIBackend
from tests.fakes import CPU, FakeClock
from tests.llm.conftest import FakeBackend

PIECES = ["Hello", " from", " the **server**."]


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.failures_left = 0
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        self.server.auth.append(self.headers.get("Authorization"))
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        if self.server.failures_left > 0:
            self.server.failures_left -= 1
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"error": "model overloaded"}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n')
        for piece in PIECES:
            event = {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def server() -> Iterator[ChatServer]:
    srv = ChatServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def remote_backend(server: ChatServer, config, key_env: str | None = None) -> OpenAIBackend:
    spec = LlmBackendConfig(kind="openai", model="served-model", url=server.base_url, api_key_env=key_env)
    return OpenAIBackend("remote", spec, config.llm.total_timeout_s)


async def test_streams_a_cleaned_answer_and_sends_history_limits_and_key(server, fake_config, monkeypatch):
    monkeypatch.setenv("LUXA_TEST_LLM_KEY", "secret-123")
    manager = EnhancedLLMManager(fake_config, CPU, backends=[remote_backend(server, fake_config, "LUXA_TEST_LLM_KEY")])
    pieces = [p async for p in manager.stream("Hi there")]
    assert "".join(pieces) == "Hello from the server."
    assert pieces  # a short answer is held until it is judged (LLM/guard.py), then comes as one piece
    body = server.bodies[-1]
    assert body["stream"] is True and body["model"] == "served-model"
    assert body["max_tokens"] == fake_config.llm.max_tokens and body["stop"] == fake_config.llm.stop
    assert body["messages"][0] == {"role": "system", "content": fake_config.llm.system_prompt}
    assert body["messages"][-1] == {"role": "user", "content": "Hi there"}
    assert server.auth[-1] == "Bearer secret-123"
    await manager.close()


async def test_server_errors_fall_back_open_the_breaker_and_recover_after_the_cooldown(server, fake_config):
    clock = FakeClock()
    local = FakeBackend("local", ["Local answer."])
    manager = EnhancedLLMManager(fake_config, CPU, clock=clock, backends=[remote_backend(server, fake_config), local])
    threshold = fake_config.circuit_breaker.failure_threshold
    server.failures_left = 100

    for _ in range(threshold):
        assert (await manager.chat("Hello")).backend == "local"
    assert manager.health()["backends"]["remote"]["breaker"] == "open"
    assert "HTTP 500" in manager.health()["backends"]["remote"]["error"]

    asked = len(server.bodies)
    assert (await manager.chat("Hello")).backend == "local"
    assert len(server.bodies) == asked  # an open breaker does not even ask the server

    server.failures_left = 0
    clock.now += fake_config.circuit_breaker.cooldown_s
    recovered = await manager.chat("Hello")
    assert (recovered.reply, recovered.backend) == ("Hello from the server.", "remote")
    assert manager.health()["backends"]["remote"]["breaker"] == "closed"
    await manager.close()


async def test_an_unreachable_server_from_the_config_ends_in_the_apology(fake_config):
    with ThreadingHTTPServer(("127.0.0.1", 0), ChatHandler) as closed:
        port = closed.server_address[1]  # bound then closed: nothing listens there any more
    fake_config.llm.backends = {
        "remote": LlmBackendConfig(kind="openai", model="m", url=f"http://127.0.0.1:{port}/v1", priority=10),
    }
    manager = EnhancedLLMManager(fake_config, CPU)
    await manager.start()
    result = await manager.chat("Hello", language="fr")
    assert (result.reply, result.backend) == (fake_config.llm.apology["fr"], "apology")
    assert "ConnectError" in manager.health()["backends"]["remote"]["error"]
    await manager.close()
