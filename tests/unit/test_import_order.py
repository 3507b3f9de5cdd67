"""The one-GPU rule holds for the real entry point: every CUDA-capable library is imported only
after CUDA_DEVICE_ORDER and CUDA_VISIBLE_DEVICES name the configured card.

Each test runs in a fresh interpreter, because this test process has already imported things.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RECORDER = r'''
import importlib.abc, json, os, sys
WATCHED = {"faster_whisper", "ctranslate2", "llama_cpp", "onnxruntime", "torch"}
SEEN = []

class Recorder(importlib.abc.MetaPathFinder):
    """Notes the environment at the moment a watched library is first looked up."""
    def find_spec(self, fullname, path=None, target=None):
        if fullname in WATCHED:
            SEEN.append([fullname, os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("CUDA_DEVICE_ORDER")])
        return None

sys.meta_path.insert(0, Recorder())
'''


def _python(repo_root: Path, code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER") and not (k.startswith("LUXA_") and "__" in k)}
    return subprocess.run([sys.executable, "-c", RECORDER + code], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=600)


def _seen(result: subprocess.CompletedProcess) -> list[list[str]]:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.integration  # transcribes with the real whisper-base
def test_transcribe_imports_cuda_libraries_only_after_the_configured_card_is_pinned(repo_root: Path, corpus_dir: Path):
    wav = corpus_dir / "commands" / "living_room_light_en.wav"
    result = _python(repo_root, f'''
import run_assistant
code = run_assistant.main(["--set", "gpu.index=1", "--set", "stt.backends.tiny_en.enabled=false",
                           "transcribe", {str(wav)!r}])
print("transcribe exit", code, file=sys.stderr)
import llama_cpp, onnxruntime  # what the LLM and TTS managers import next
print(json.dumps(SEEN))
''')
    seen = _seen(result)
    names = {name for name, _, _ in seen}
    assert {"faster_whisper", "ctranslate2", "llama_cpp", "onnxruntime"} <= names, (seen, result.stderr[-2000:])
    assert all(visible == "1" and order == "PCI_BUS_ID" for _, visible, order in seen), seen


def test_gpu_index_from_set_is_the_card_the_libraries_see(repo_root: Path):
    result = _python(repo_root, '''
import run_assistant
assert run_assistant.main(["--set", "gpu.index=0", "models", "list"]) == 0
import faster_whisper
print(json.dumps(SEEN))
''')
    seen = _seen(result)
    assert seen and all(visible == "0" and order == "PCI_BUS_ID" for _, visible, order in seen), seen


def test_cuda_import_before_the_pin_is_refused_by_the_guard(repo_root: Path):
    result = _python(repo_root, '''
import run_assistant
try:
    import faster_whisper
except ImportError as err:
    print(json.dumps([str(err)]))
else:
    print(json.dumps(["imported without a pin"]))
''')
    (message,) = _seen(result)
    assert "GPU guard: faster_whisper imported before the GPU was pinned" in message
