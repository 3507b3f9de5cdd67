"""Piper as a separate program: the fallback when the in-process engine is broken.

It shares no state with this process (a crashed or wedged onnxruntime session cannot take it
down), at the price of loading the voice at every request: it is a fallback, not the fast path.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from Core.audio import Audio, pcm16_to_float32
from Core.errors import BackendError
from TTS.base import SpeechRequest
from TTS.piper_voices import PiperBackend, voice_settings
from TTS.process import run_engine


class PiperCliBackend(PiperBackend):
    name = "piper_cli"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._executable = self.backend_config.executable or _installed_piper()

    def executable(self) -> str:
        return self._executable

    async def start(self) -> None:
        if not Path(self.executable()).is_file():
            raise BackendError(f"piper executable not found: {self.executable()}")

    def cache_key(self, request: SpeechRequest) -> tuple:
        return super().cache_key(request) + (self.executable(),)

    async def synthesize(self, request: SpeechRequest) -> Audio:
        model = self.model_path(self.require_voice(request))
        settings = voice_settings(model)
        length_scale = settings.length_scale / request.speed  # as piper_native does
        argv = [self.executable(), "--model", str(model), "--output-raw", "--length-scale", f"{length_scale:.4f}"]
        # one line in, one utterance out: piper reads stdin line by line
        text = " ".join(request.text.split())
        pcm = await run_engine(argv, (text + "\n").encode("utf-8"))
        return Audio(pcm16_to_float32(pcm[: len(pcm) - len(pcm) % 2]), settings.sample_rate)


def _installed_piper() -> str:
    """The `piper` script installed beside this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / ("piper.exe" if sys.platform == "win32" else "piper")
    return str(beside) if beside.is_file() else (shutil.which("piper") or str(beside))
