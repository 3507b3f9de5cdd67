"""The server under test: `run_assistant.py wyoming` as a subprocess with the real default models.

One daemon per test module (loading the models costs seconds of CPU), on a free loopback port, or
on 0.0.0.0 the way Home Assistant add-ons bind (LUXA_TEST_WYOMING_BIND=0.0.0.0, e.g. inside
`unshare -rn` where only loopback exists). Its limits are set low so the tests reach them fast.
"""
from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import httpx
import jiwer
import numpy as np
import pytest
from audio_harness import LuxaProcess, stop_daemon  # scripts/ (tests/conftest.py)

from Core.audio import Audio, load_audio

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 240
LIMITS = {
    "wyoming.max_text_chars": "300",
    "wyoming.max_audio_s": "30",
    "wyoming.request_timeout_s": "2",
    "wyoming.max_event_bytes": "262144",
    "wyoming.max_concurrent": "1",
    "wyoming.queue_size": "1",
    "llm.max_tokens": "24",  # short answers keep the conversation tests quick
}


@dataclass
class WyomingDaemon:
    proc: Popen
    uri: str  # where a client connects
    lines: list[str]
    metrics_url: str

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the daemon's /metrics (0.0 when the series does not exist yet)."""
        text = httpx.get(self.metrics_url, timeout=10).text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            series, _, value = line.rpartition(" ")
            if series == (f"{name}{{{wanted}}}" if labels else name):
                return float(value)
        return 0.0


def _free_port() -> int:
    with socket.socket() as s:  # metrics.port must be a real port (1-65535): take a free one
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bind() -> str:
    return os.environ.get("LUXA_TEST_WYOMING_BIND", "127.0.0.1")


def start_daemon(*extra: str, limits: dict[str, str] = LIMITS) -> WyomingDaemon:
    bind = _bind()
    metrics_port = _free_port()
    limits = {**limits, "metrics.enabled": "true", "metrics.port": str(metrics_port)}
    sets = [arg for name, value in limits.items() for arg in ("--set", f"{name}={value}")]
    if bind != "127.0.0.1":
        sets += ["--set", "wyoming.allow_remote=true"]
    luxa = LuxaProcess(*sets, *extra, "wyoming", "--uri", f"tcp://{bind}:0")
    port = luxa.wait_until_serving(r"LUXA Wyoming server on tcp://\S+:(\d+)", START_TIMEOUT_S).group(1)
    if bind != "127.0.0.1":
        assert any("WARNING" in line and "no authentication" in line for line in luxa.lines), \
            "a public bind must be logged as a warning"
    return WyomingDaemon(luxa.proc, f"tcp://127.0.0.1:{port}", luxa.lines, f"http://127.0.0.1:{metrics_port}/metrics")


@pytest.fixture(scope="module")
def daemon() -> WyomingDaemon:
    running = start_daemon()
    yield running
    started = time.monotonic()
    assert stop_daemon(running.proc) == 0, "the daemon did not stop cleanly on SIGTERM"
    assert time.monotonic() - started < 10, "the daemon took too long to stop"


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


def wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(normalise(reference), normalise(hypothesis) or "<empty>")


def pcm(audio: Audio, rate: int, width: int, channels: int) -> bytes:
    """Audio as the PCM a client would send: any rate, 8/16/32-bit, any channel count."""
    samples = audio.to_rate(rate).samples
    frames = np.repeat(samples[:, None], channels, axis=1)
    if width == 1:
        return (np.round(np.clip(frames, -1, 1) * 127) + 128).astype(np.uint8).tobytes()
    scale, dtype = {2: (32767, "<i2"), 4: (2**31 - 1, "<i4")}[width]
    return np.round(np.clip(frames, -1, 1) * scale).astype(dtype).tobytes()


@pytest.fixture(scope="session")
def fleurs_en(corpus_dir: Path) -> tuple[Audio, str]:
    """A short real English clip (FLEURS) and its reference transcript."""
    clip = corpus_dir / "fleurs" / "fleurs-en-003.ogg"
    return load_audio(clip), clip.with_suffix(".txt").read_text(encoding="utf-8").strip()
