"""The daemon under test: `run_assistant.py serve` as a subprocess with the real default models.

One daemon for the whole API session (loading the models costs seconds of CPU); its limits are
set here so the tests can reach them quickly, and its state folder (the key file) is private.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import httpx
import pytest
from audio_harness import LuxaProcess, stop_daemon  # scripts/ (tests/conftest.py)

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 240
LIMITS = {
    "api.port": "0",
    "api.rate_limit_per_minute": "100000",  # never reached here: the 429 test starts its own daemon
    "api.queue_size": "2",
    "api.max_text_chars": "300",
    "api.max_audio_bytes": "2000000",
    "llm.max_tokens": "24",  # short answers keep the chat and fuzz tests quick
}


@dataclass
class Daemon:
    proc: Popen
    url: str
    key: str
    state_dir: Path
    lines: list[str]

    def client(self, key: str | None = "", headers: dict[str, str] | None = None, **kwargs) -> httpx.Client:
        """A client sending `key` (default: the right one; None: no key at all) and `headers`."""
        key = self.key if key == "" else key
        sent = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return httpx.Client(base_url=self.url, headers={**sent, **(headers or {})}, timeout=120.0, **kwargs)


def start_daemon(state_dir: Path, *extra: str, limits: dict[str, str] = LIMITS) -> Daemon:
    sets = [arg for name, value in limits.items() for arg in ("--set", f"{name}={value}")]
    luxa = LuxaProcess("--set", f"service.state_dir={state_dir}", *sets, *extra, "serve")
    url = luxa.wait_until_serving(r"LUXA control API on (http://\S+)", START_TIMEOUT_S).group(1)
    return Daemon(luxa.proc, url, (state_dir / "api_key").read_text().strip(), state_dir, luxa.lines)


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that talks to the daemon loads the real models: it is an integration test."""
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent) and "daemon" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def daemon(tmp_path_factory) -> Daemon:
    running = start_daemon(tmp_path_factory.mktemp("luxa-state"))
    yield running
    assert stop_daemon(running.proc) == 0, "the daemon did not stop cleanly on SIGTERM"


@pytest.fixture
def client(daemon: Daemon):
    with daemon.client() as http:
        yield http


@pytest.fixture(scope="session")
def whisper_base():
    """The real whisper-base in this process, to check what the daemon said independently."""
    from faster_whisper import WhisperModel

    from Core.models import resolve

    return WhisperModel(str(resolve("whisper-base", "whisper").path), device="cpu", compute_type="int8", cpu_threads=2)
