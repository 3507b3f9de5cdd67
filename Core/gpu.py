"""One GPU only: pin the process to the configured card before any CUDA library loads.

CUDA enumerates cards in its own "fastest first" order by default, which differs from
nvidia-smi's PCI order, so the user's index would point at the wrong card. Setting
CUDA_DEVICE_ORDER=PCI_BUS_ID and CUDA_VISIBLE_DEVICES=<index> before the first CUDA import
makes the chosen card cuda:0 for every library and hides the others entirely.
"""
from __future__ import annotations

import importlib.abc
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

from Core.errors import GpuError

log = logging.getLogger(__name__)

CUDA_MODULES = frozenset({"torch", "ctranslate2", "faster_whisper", "llama_cpp", "onnxruntime", "qwen_tts", "pynvml"})
_pinned_index: int | None = None


def pin(index: int) -> None:
    """Restrict this process to card `index` (PCI bus order). Must run before CUDA imports."""
    global _pinned_index
    loaded = sorted(CUDA_MODULES & set(sys.modules))
    if loaded and _pinned_index is None:
        raise GpuError(f"GPU guard: {', '.join(loaded)} imported before the GPU was pinned")
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    if previous not in (None, str(index)) and _pinned_index is None:
        log.warning("CUDA_VISIBLE_DEVICES=%s replaced by gpu.index=%d", previous, index)
    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
    _pinned_index = index


def pinned_index() -> int | None:
    return _pinned_index


class _ImportGuard(importlib.abc.MetaPathFinder):
    """Fails any CUDA-capable import that happens before pin(): it would see every card."""

    def find_spec(self, fullname, path=None, target=None):
        if _pinned_index is None and fullname.split(".")[0] in CUDA_MODULES:
            raise ImportError(f"GPU guard: {fullname} imported before the GPU was pinned (call Core.gpu.pin first)")
        return None


def install_import_guard() -> None:
    if not any(isinstance(f, _ImportGuard) for f in sys.meta_path):
        sys.meta_path.insert(0, _ImportGuard())


@dataclass(frozen=True)
class GpuStatus:
    device: str  # "cuda" or "cpu"
    index: int
    name: str | None = None
    free_mb: int | None = None
    total_mb: int | None = None
    reason: str = ""

    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda"


def query_card(index: int) -> tuple[str, int, int] | None:
    """(name, free MiB, total MiB) of card `index` in PCI order, read by nvidia-smi; None without one."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run(
            [smi, f"--id={index}", "--query-gpu=name,memory.free,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    name, free, total = [p.strip() for p in out.stdout.strip().splitlines()[0].split(",")]
    return name, int(float(free)), int(float(total))


def check(index: int, name_pattern: str | None, min_free_mb: int, on_missing: str,
          query=query_card) -> GpuStatus:
    """Validate the configured card; apply on_missing (cpu: warn once, fail: GpuError)."""
    card = query(index)
    if card is None:
        reason = f"no NVIDIA GPU at index {index} (PCI bus order)"
    else:
        name, free, total = card
        if name_pattern and not re.search(name_pattern, name):
            reason = f"GPU {index} is {name!r}, which does not match gpu.name_pattern {name_pattern!r}"
        elif free < min_free_mb:
            reason = f"GPU {index} ({name}) has {free} MiB free, below gpu.min_free_mb={min_free_mb}"
        else:
            return GpuStatus("cuda", index, name, free, total, "ok")
    if on_missing == "fail":
        raise GpuError(f"{reason}; gpu.on_missing=fail")
    log.warning("%s: running on the CPU (set gpu.on_missing=fail to refuse instead)", reason)
    return GpuStatus("cpu", index, reason=reason)
