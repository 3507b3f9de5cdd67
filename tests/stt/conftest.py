"""STT fixtures: the real default models load once per session (they take seconds and hundreds of MB)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from Config import LuxaConfig
from Core.gpu import GpuStatus
from STT import RobustSTTManager
from tests.fakes import CPU


@dataclass(frozen=True)
class Clip:
    path: Path
    language: str
    reference: str


@pytest.fixture(scope="session")
def cpu_gpu() -> GpuStatus:
    return CPU


@pytest.fixture(scope="session")
def fleurs_clips(corpus_dir: Path) -> list[Clip]:
    clips = [Clip(p, p.stem.split("-")[1], p.with_suffix(".txt").read_text(encoding="utf-8").strip())
             for p in sorted((corpus_dir / "fleurs").glob("fleurs-*.ogg"))]
    assert {c.language for c in clips} == {"en", "fr"}, "the corpus should hold English and French FLEURS clips"
    return clips


@pytest.fixture(scope="session")
def command_clips(corpus_dir: Path) -> list[Clip]:
    rows = (corpus_dir / "commands" / "transcripts.tsv").read_text(encoding="utf-8").strip().splitlines()
    return [Clip(corpus_dir / "commands" / name, "en", text) for name, text in (r.split("\t") for r in rows)]


@pytest.fixture(scope="session")
async def real_stt(default_config: LuxaConfig) -> RobustSTTManager:
    """The shipped config: whisper-base then tiny.en, both real, loaded and warmed once."""
    manager = RobustSTTManager(default_config, CPU)
    await manager.start()
    yield manager
    await manager.close()
