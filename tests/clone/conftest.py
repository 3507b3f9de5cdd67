"""Fixtures for the voice-clone tests: a tiny random Qwen3-TTS Base model and configs that use it.

Tests that need the model skip with a reason when the clone extra is absent; the store,
reference-validation, similarity and "extra missing" tests run everywhere.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from Config import LuxaConfig, load_config
from Config.schema import TtsConfig
from Core.audio import Audio, load_audio

REFERENCE = "fleurs-en-001"  # 8.8 s, one English speaker, loud and clean
MAX_NEW_TOKENS = 12  # a random model never says EOS: bound each sentence to ~1 s of codes
NO_EXTRA = "the clone extra (qwen-tts) is not installed: scripts/setup.sh --clone"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    if importlib.util.find_spec("qwen_tts") is None:
        pytest.skip(NO_EXTRA)
    from tiny_qwen import build_tiny_base_model  # scripts/

    return build_tiny_base_model(tmp_path_factory.mktemp("qwen3-tts-tiny-base"))


@pytest.fixture(scope="session")
def reference(corpus_dir: Path) -> tuple[Path, str]:
    clip = corpus_dir / "fleurs" / f"{REFERENCE}.ogg"
    return clip, clip.with_suffix(".txt").read_text().strip()


@pytest.fixture(scope="session")
def reference_audio(reference) -> Audio:
    return load_audio(reference[0])


@pytest.fixture
def clone_settings(tiny_model: Path, tmp_path: Path) -> dict:
    """A partial config (YAML-shaped) running qwen_clone on the tiny model, prompts in tmp."""
    return {
        "tts": {
            "backends": {**{name: backend.model_dump() for name, backend in TtsConfig().backends.items()},
                         "qwen_clone": {**TtsConfig().backends["qwen_clone"].model_dump(), "enabled": True}},
            "clone": {"models": {"0.6B": str(tiny_model)}, "prompt_store_dir": str(tmp_path / "voices"),
                      "max_new_tokens": MAX_NEW_TOKENS},
        },
        "service": {"state_dir": str(tmp_path / "state")},
    }


@pytest.fixture
def clone_config(clone_settings: dict) -> LuxaConfig:
    return LuxaConfig.model_validate(clone_settings)


@pytest.fixture
def config_file(clone_settings: dict, tmp_path: Path) -> Path:
    path = tmp_path / "clone.yaml"
    path.write_text(yaml.safe_dump(clone_settings))
    return path


@pytest.fixture
def make_config():
    def make(*overrides: str) -> LuxaConfig:
        return load_config(overrides=list(overrides), environ={})

    return make
