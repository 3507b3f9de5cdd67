"""Core.gpu: pin one card by PCI order, refuse late pins, validate the card, apply on_missing."""
from __future__ import annotations

import logging
import os
import sys
import types

import pytest

from Core import gpu
from Core.errors import GpuError


@pytest.fixture
def unpinned(monkeypatch):
    """A process state where nothing was pinned yet; the real pin comes back afterwards."""
    monkeypatch.setattr(gpu, "_pinned_index", None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    for name in gpu.CUDA_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_pin_sets_pci_order_and_the_visible_card(unpinned):
    gpu.pin(3)
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert gpu.pinned_index() == 3


def test_pin_replaces_an_inherited_visible_devices_with_a_warning(unpinned, monkeypatch, caplog):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with caplog.at_level(logging.WARNING, logger="Core.gpu"):
        gpu.pin(1)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    assert "replaced" in caplog.text


def test_pin_after_a_cuda_library_was_imported_is_refused(unpinned, monkeypatch):
    monkeypatch.setitem(sys.modules, "ctranslate2", types.ModuleType("ctranslate2"))
    with pytest.raises(GpuError, match="ctranslate2 imported before"):
        gpu.pin(1)


def test_import_guard_refuses_cuda_imports_until_pinned(unpinned):
    guard = gpu._ImportGuard()
    with pytest.raises(ImportError, match="faster_whisper.transcribe imported before the GPU was pinned"):
        guard.find_spec("faster_whisper.transcribe")
    assert guard.find_spec("numpy") is None
    gpu.pin(0)
    assert guard.find_spec("faster_whisper") is None


def _card(name="NVIDIA GeForce RTX 3090", free=20000, total=24576):
    return lambda index: (name, free, total)


def test_check_uses_a_matching_card():
    status = gpu.check(1, r"RTX 3090", 1000, "cpu", query=_card())
    assert status.on_gpu and status.device == "cuda"
    assert (status.index, status.name, status.free_mb) == (1, "NVIDIA GeForce RTX 3090", 20000)


def test_missing_card_falls_back_to_cpu_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="Core.gpu"):
        status = gpu.check(1, None, 0, "cpu", query=lambda index: None)
    assert status.device == "cpu" and not status.on_gpu
    assert "no NVIDIA GPU at index 1" in status.reason
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "CPU" in warnings[0].getMessage()


def test_missing_card_with_on_missing_fail_raises():
    with pytest.raises(GpuError, match="no NVIDIA GPU at index 1.*on_missing=fail"):
        gpu.check(1, None, 0, "fail", query=lambda index: None)


def test_card_with_another_name_is_rejected():
    status = gpu.check(1, r"RTX 4090", 0, "cpu", query=_card())
    assert status.device == "cpu"
    assert "does not match gpu.name_pattern" in status.reason
    with pytest.raises(GpuError, match="name_pattern"):
        gpu.check(1, r"RTX 4090", 0, "fail", query=_card())


def test_card_with_too_little_free_memory_is_rejected():
    status = gpu.check(1, None, 30000, "cpu", query=_card(free=20000))
    assert status.device == "cpu"
    assert "20000 MiB free, below gpu.min_free_mb=30000" in status.reason


def test_query_card_without_nvidia_smi_reports_no_card(monkeypatch):
    monkeypatch.setattr(gpu.shutil, "which", lambda name: None)
    assert gpu.query_card(0) is None
