"""`models fetch`: download, resume, verify and install atomically, against a local HTTP server."""
from __future__ import annotations

import hashlib
import http.server
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from Core import fetch
from Core.errors import ModelMissingError

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # ~1 MiB, not a multiple of the read block
CONFIG_JSON = b'{"kind": "test"}\n'
OPTIONS = fetch.FetchOptions(retries=2, timeout_s=5.0, progress=False)
NO_RETRY = fetch.FetchOptions(retries=0, timeout_s=5.0, progress=False)


@dataclass
class ModelServer:
    """What the handler serves and what it saw."""

    files: dict[str, bytes]
    drop_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before hanging up, once
    honour_range: bool = True
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""


def _handler(state: ModelServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            state.requests.append((self.path, self.headers.get("Range")))
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            wanted = self.headers.get("Range")
            if wanted and state.honour_range:
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            cut = state.drop_after.pop(self.path, None)
            self.wfile.write(body[start:cut] if cut is not None else body[start:])
            if cut is not None:
                self.close_connection = True  # hang up with the promised length unsent

    return Handler


@pytest.fixture
def server():
    state = ModelServer(files={})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(tmp_path: Path, base_url: str, sha256: str | None = None, size: int | None = None,
              extra_path: str = "config.json") -> Path:
    path = tmp_path / "manifest.yaml"
    files = [{"path": "tiny-model.gguf", "size": size, "sha256": sha256 or _sha(PAYLOAD)},
             {"path": extra_path, "size": len(CONFIG_JSON), "sha256": _sha(CONFIG_JSON)}]
    path.write_text(yaml.safe_dump({"models": {"tiny-model": {
        "kind": "gguf", "base_url": base_url, "files": files}}}), encoding="utf-8")
    return path


def _serve_model(server: ModelServer, prefix: str = "/repo") -> str:
    server.files[f"{prefix}/tiny-model.gguf"] = PAYLOAD
    server.files[f"{prefix}/config.json"] = CONFIG_JSON
    return server.url + prefix


def test_full_download_is_verified_and_moved_into_place(tmp_path: Path, server: ModelServer):
    manifest = _manifest(tmp_path, _serve_model(server))
    models_root = tmp_path / "models"
    assert fetch.fetch_by_name("tiny-model", str(models_root), manifest, OPTIONS) == 0
    target = models_root / "tiny-model"
    assert (target / "tiny-model.gguf").read_bytes() == PAYLOAD
    assert (target / "config.json").read_bytes() == CONFIG_JSON
    assert server.url in (target / ".luxa-source").read_text()
    assert f"{_sha(PAYLOAD)}  tiny-model.gguf" in (target / ".luxa-sha256").read_text()
    assert not (models_root / ".downloads" / "tiny-model").exists()


def test_interrupted_download_resumes_with_a_range_request(tmp_path: Path, server: ModelServer):
    manifest = _manifest(tmp_path, _serve_model(server))
    server.drop_after["/repo/tiny-model.gguf"] = 300_000
    fetch.fetch_by_name("tiny-model", str(tmp_path / "models"), manifest, OPTIONS)
    assert (tmp_path / "models" / "tiny-model" / "tiny-model.gguf").read_bytes() == PAYLOAD
    model_requests = [r for p, r in server.requests if p.endswith(".gguf")]
    assert model_requests == [None, "bytes=300000-"]


def test_failed_run_keeps_the_part_and_the_next_run_resumes_it(tmp_path: Path, server: ModelServer):
    manifest = _manifest(tmp_path, _serve_model(server))
    models_root = tmp_path / "models"
    server.drop_after["/repo/tiny-model.gguf"] = 123_456
    with pytest.raises(fetch.FetchError, match="network failure.*123456 bytes kept.*resume") as caught:
        fetch.fetch_by_name("tiny-model", str(models_root), manifest, NO_RETRY)
    assert "\n" not in str(caught.value)
    assert not (models_root / "tiny-model").exists()
    part = models_root / ".downloads" / "tiny-model" / "tiny-model.gguf.part"
    assert part.stat().st_size == 123_456

    fetch.fetch_by_name("tiny-model", str(models_root), manifest, NO_RETRY)
    assert (models_root / "tiny-model" / "tiny-model.gguf").read_bytes() == PAYLOAD
    assert [r for p, r in server.requests if p.endswith(".gguf")][-1] == "bytes=123456-"


def test_server_that_ignores_range_restarts_without_duplicating_bytes(tmp_path: Path, server: ModelServer):
    manifest = _manifest(tmp_path, _serve_model(server))
    server.honour_range = False
    server.drop_after["/repo/tiny-model.gguf"] = 200_000
    fetch.fetch_by_name("tiny-model", str(tmp_path / "models"), manifest, OPTIONS)
    assert (tmp_path / "models" / "tiny-model" / "tiny-model.gguf").read_bytes() == PAYLOAD


def test_wrong_checksum_is_rejected_and_nothing_is_left_in_place(tmp_path: Path, server: ModelServer):
    manifest = _manifest(tmp_path, _serve_model(server), sha256="0" * 64)
    models_root = tmp_path / "models"
    with pytest.raises(fetch.FetchError, match="checksum mismatch for tiny-model.gguf") as caught:
        fetch.fetch_by_name("tiny-model", str(models_root), manifest, OPTIONS)
    assert "\n" not in str(caught.value)
    assert not (models_root / "tiny-model").exists()
    assert not list((models_root / ".downloads").rglob("tiny-model.gguf*")), "corrupt bytes were kept"


def test_wrong_size_is_rejected(tmp_path: Path, server: ModelServer):
    manifest = _manifest(tmp_path, _serve_model(server), size=len(PAYLOAD) + 1)
    with pytest.raises(fetch.FetchError, match="manifest says"):
        fetch.fetch_by_name("tiny-model", str(tmp_path / "models"), manifest, OPTIONS)
    assert not (tmp_path / "models" / "tiny-model").exists()


def test_file_without_a_checksum_is_installed_with_a_warning(tmp_path: Path, server: ModelServer, caplog):
    base = _serve_model(server)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"models": {"loose": {"kind": "gguf", "base_url": base,
                                                             "files": [{"path": "tiny-model.gguf"}]}}}))
    fetch.fetch_by_name("loose", str(tmp_path / "models"), manifest, OPTIONS)
    assert "not verified" in caplog.text
    assert _sha(PAYLOAD) in (tmp_path / "models" / "loose" / ".luxa-sha256").read_text()


def test_unknown_name_lists_the_manifest_names(tmp_path: Path, server: ModelServer):
    manifest = _manifest(tmp_path, server.url)
    with pytest.raises(ModelMissingError, match="unknown model 'nope'.*known: tiny-model"):
        fetch.fetch_by_name("nope", str(tmp_path / "models"), manifest, OPTIONS)


def test_http_error_is_one_line_without_retrying(tmp_path: Path, server: ModelServer):
    manifest = _manifest(tmp_path, server.url + "/missing")
    with pytest.raises(fetch.FetchError, match="HTTP 404"):
        fetch.fetch_by_name("tiny-model", str(tmp_path / "models"), manifest, OPTIONS)
    assert len(server.requests) == 1


def test_unreachable_server_is_a_network_failure(tmp_path: Path, server: ModelServer):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    manifest = _manifest(tmp_path, dead)
    with pytest.raises(fetch.FetchError, match="network failure downloading tiny-model.gguf"):
        fetch.fetch_by_name("tiny-model", str(tmp_path / "models"), manifest, NO_RETRY)


def test_mirror_from_the_environment_replaces_every_base_url(tmp_path: Path, server: ModelServer, monkeypatch):
    _serve_model(server, prefix="/mirror/tiny-model")
    manifest = _manifest(tmp_path, "http://127.0.0.1:9/unreachable")
    monkeypatch.setenv(fetch.BASE_URL_ENV, server.url + "/mirror")
    fetch.fetch_by_name("tiny-model", str(tmp_path / "models"), manifest, OPTIONS)
    assert {p for p, _ in server.requests} == {"/mirror/tiny-model/tiny-model.gguf", "/mirror/tiny-model/config.json"}


def test_base_url_option_wins_over_the_environment(tmp_path: Path, server: ModelServer, monkeypatch):
    _serve_model(server, prefix="/opt/tiny-model")
    manifest = _manifest(tmp_path, "http://127.0.0.1:9/unreachable")
    monkeypatch.setenv(fetch.BASE_URL_ENV, "http://127.0.0.1:9/also-unreachable")
    fetch.fetch_by_name("tiny-model", str(tmp_path / "models"), manifest, OPTIONS, base_url=server.url + "/opt")
    assert (tmp_path / "models" / "tiny-model" / "config.json").is_file()


def test_files_in_subfolders_keep_their_layout(tmp_path: Path, server: ModelServer):
    base = _serve_model(server)
    server.files["/repo/speech_tokenizer/config.json"] = CONFIG_JSON
    manifest = _manifest(tmp_path, base, extra_path="speech_tokenizer/config.json")
    fetch.fetch_by_name("tiny-model", str(tmp_path / "models"), manifest, OPTIONS)
    assert (tmp_path / "models" / "tiny-model" / "speech_tokenizer" / "config.json").read_bytes() == CONFIG_JSON


def test_installed_model_is_not_downloaded_again(tmp_path: Path, server: ModelServer):
    manifest = _manifest(tmp_path, _serve_model(server))
    fetch.fetch_by_name("tiny-model", str(tmp_path / "models"), manifest, OPTIONS)
    seen = len(server.requests)
    assert fetch.fetch_by_name("tiny-model", str(tmp_path / "models"), manifest, OPTIONS) == 0
    assert len(server.requests) == seen


@pytest.mark.parametrize("bad_path", ["../escape.bin", "/etc/passwd", "a/../../b"])
def test_manifest_path_outside_the_model_folder_is_refused(tmp_path: Path, bad_path: str):
    manifest = _manifest(tmp_path, "http://127.0.0.1:9", extra_path=bad_path)
    with pytest.raises(fetch.FetchError, match="files.1.path"):
        fetch.load_manifest(manifest)


def test_shipped_manifest_is_valid_and_names_the_promised_models():
    manifest = fetch.load_manifest()
    kinds = {name: entry.kind for name, entry in manifest.models.items()}
    assert kinds["whisper-large-v3-turbo"] == "whisper"
    assert kinds["fr_FR-siwis-medium"] == "piper"
    assert kinds["qwen3-tts-12hz-0.6b-base"] == kinds["qwen3-tts-12hz-1.7b-base"] == "folder"
    assert any(kind == "gguf" for kind in kinds.values())
    for entry in manifest.models.values():
        assert (entry.base_url or manifest.base_url or "").startswith("https://")
