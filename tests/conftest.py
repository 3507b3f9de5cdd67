"""Shared fixtures. Append new fixtures at the end; keep the GPU pin at the top.

The GPU is pinned at import, before any test module imports a manager, so tests that import
STT/LLM/TTS directly follow the same one-GPU rule as `run_assistant.py`.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from Config import LuxaConfig, load_config
from Core import gpu

gpu.pin(LuxaConfig().gpu.index)

REPO_ROOT = Path(__file__).resolve().parent.parent
# scripts/ is the import root of the benchmarks and of the audio harness the e2e tests share with them
sys.path.insert(0, str(REPO_ROOT / "scripts"))
CLI_TIMEOUT_S = 300


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="run the long forms of reliability tests (marker `long`)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="long form: run with --long")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared speech corpus: <repo>/../shared/corpus, or $LUXA_CORPUS."""
    path = Path(os.environ.get("LUXA_CORPUS") or REPO_ROOT.parent / "shared" / "corpus")
    if not path.is_dir():
        pytest.skip(f"speech corpus not found at {path} (set LUXA_CORPUS to its folder)")
    return path


@pytest.fixture(scope="session")
def default_config() -> LuxaConfig:
    """Config/assistant.yaml as shipped, without the caller's LUXA_* environment."""
    return load_config(environ={})


@pytest.fixture(scope="session")
def run_cli(repo_root: Path):
    """Run `python run_assistant.py ARGS...` from the repository root; returns CompletedProcess."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = CLI_TIMEOUT_S,
            input: str | None = None) -> subprocess.CompletedProcess:
        # the caller's LUXA_<SECTION>__<KEY> overrides would change what is being tested
        full_env = {k: v for k, v in os.environ.items() if not (k.startswith("LUXA_") and "__" in k)}
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "run_assistant.py", *args], cwd=repo_root, env=full_env,
            capture_output=True, text=True, timeout=timeout, input=input,
        )

    return run


@pytest.fixture
def virtual_audio(tmp_path_factory):
    """A fresh private PulseAudio server per test (scripts/audio_harness.py), with a faint noise floor
    in the mic; fresh, because a test that unplugs the mic must not leave that state to the next."""
    from audio_harness import VirtualAudio, have_pulseaudio

    if not have_pulseaudio():
        pytest.fail("PulseAudio tools missing: run `bash scripts/setup.sh --test`")
    audio = VirtualAudio(tmp_path_factory.mktemp("pulse"))
    audio.start_noise_floor()
    yield audio
    audio.close()
