"""The key, the limits and the error format, against the running daemon."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import httpx
import pytest

from tests.api.conftest import LIMITS, REPO_ROOT, start_daemon, stop_daemon

ROUTES = [("GET", "/health"), ("GET", "/metrics"), ("GET", "/openapi.json"), ("GET", "/v1/models"),
          ("POST", "/v1/models/preload"), ("POST", "/v1/say"), ("POST", "/v1/transcribe"), ("POST", "/v1/chat"),
          ("GET", "/v1/voices"), ("POST", "/v1/voices"), ("GET", "/v1/voices/abc"), ("DELETE", "/v1/voices/abc"),
          ("GET", "/no/such/route")]


@pytest.mark.parametrize("method,path", ROUTES)
def test_every_route_needs_the_key(daemon, method, path):
    with daemon.client(key=None) as anonymous:
        response = anonymous.request(method, path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_wrong_key_is_refused_and_both_headers_carry_the_right_one(daemon):
    with daemon.client(key="x" * 43) as wrong:
        assert wrong.get("/health").status_code == 401
    with daemon.client(key=None, headers={"X-API-Key": daemon.key}) as by_header:
        assert by_header.get("/health").status_code == 200
    with daemon.client(key=None, headers={"Authorization": f"Basic {daemon.key}"}) as wrong_scheme:
        assert wrong_scheme.get("/health").status_code == 401


def test_the_key_file_is_private_and_api_key_prints_it(daemon, run_cli):
    key_file = daemon.state_dir / "api_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    shown = run_cli("--set", f"service.state_dir={daemon.state_dir}", "api-key")
    assert shown.returncode == 0 and shown.stdout.strip() == daemon.key


def test_an_oversized_upload_is_refused_with_413_before_it_is_read(client):
    response = client.post("/v1/transcribe", files={"file": ("big.wav", b"\0" * 2_100_000, "audio/wav")})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_an_oversized_chunked_body_is_cut_off_with_413(client):
    def chunks():  # no Content-Length: the guard has to count
        for _ in range(40):
            yield b"a" * 65536

    response = client.post("/v1/chat", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_text_above_max_text_chars_is_refused_with_413(client):
    response = client.post("/v1/say", json={"text": "word " * 100})
    assert response.status_code == 413
    assert "api.max_text_chars=300" in response.json()["error"]["message"]


@pytest.mark.parametrize("path,kwargs", [
    ("/v1/say", {"content": b"hello", "headers": {"Content-Type": "text/plain"}}),
    ("/v1/chat", {"data": {"text": "hello"}}),  # a form instead of JSON
    ("/v1/transcribe", {"json": {"file": "x.wav"}}),
    ("/v1/models/preload", {"content": b"stage=stt", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
])
def test_a_wrong_content_type_is_refused_with_415(client, path, kwargs):
    response = client.post(path, **kwargs)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_an_unknown_voice_id_is_404(client):
    for method in ("GET", "DELETE"):
        response = client.request(method, "/v1/voices/0f1e2d3c-unknown")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "unknown_voice"


@pytest.mark.parametrize("raw", ["..%2F..%2Fetc%2Fpasswd", "a%2Fb", "%2E%2E", "voice.json", "a%5Cb", "%2Fetc", "x" * 65])
def test_a_path_like_voice_id_is_422(client, raw):
    response = client.get(f"/v1/voices/{raw}")
    assert response.status_code == 422, (raw, response.text)
    assert response.json()["error"]["code"] == "invalid_id"


@pytest.fixture(scope="module")
def throttled(tmp_path_factory):
    """A second daemon allowing 20 requests a minute (STT loaded lazily: this one never transcribes)."""
    limits = {**LIMITS, "api.rate_limit_per_minute": "20", "stt.load": "lazy"}
    running = start_daemon(tmp_path_factory.mktemp("luxa-throttled"), limits=limits)
    yield running
    stop_daemon(running.proc)


@pytest.mark.integration  # a second daemon, with the real models
def test_a_client_over_the_rate_limit_gets_429_and_others_are_still_served(throttled):
    # the flood comes from its own loopback address, so it has its own bucket
    with throttled.client(key=None, transport=httpx.HTTPTransport(local_address="127.0.0.42")) as flood:
        codes = [flood.get("/health").status_code for _ in range(40)]
    assert codes[:20] == [401] * 20  # counted before the key check: guessing keys is throttled too
    assert 429 in codes[20:]
    with throttled.client(transport=httpx.HTTPTransport(local_address="127.0.0.42")) as same_address:
        refused = same_address.get("/health")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limited"
    with throttled.client() as other:
        assert other.get("/health").status_code == 200


def test_cors_is_off_by_default(client):
    response = client.options("/v1/say", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in response.headers
    response = client.get("/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def test_an_unknown_route_is_a_json_404(client):
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def _serve(state_dir, *sets: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not (k.startswith("LUXA_") and "__" in k)}
    args = [a for s in ("service.state_dir=" + str(state_dir), *sets) for a in ("--set", s)]
    return subprocess.run([sys.executable, "run_assistant.py", *args, "serve"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_binding_beyond_loopback_without_a_key_is_refused_before_loading_models(tmp_path):
    done = _serve(tmp_path, "api.host=0.0.0.0")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("luxa: error: config: api.host=0.0.0.0 is reachable")
    assert "Traceback" not in done.stderr and not (tmp_path / "api_key").exists()


def test_a_key_file_others_can_read_is_refused(tmp_path):
    key_file = tmp_path / "api_key"
    key_file.write_text("k" * 43)
    key_file.chmod(0o644)
    done = _serve(tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (f"luxa: error: API key file {key_file} is readable by other users "
                                                    f"(mode 0644): run chmod 600 {key_file}")
