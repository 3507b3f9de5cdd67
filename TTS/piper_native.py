"""Piper through its Python API: the voice stays loaded, so a sentence costs only inference.

Each voice is loaded once (start() loads the configured ones; a voice named later by a request
is loaded on first use) and used behind its own lock: an onnxruntime session may run
concurrently, but Piper's phonemizer state is shared and interleaved sentences gain nothing
on a CPU that is already busy.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from Core.audio import Audio
from Core.errors import BackendError, LuxaError
from TTS.base import SpeechRequest
from TTS.piper_voices import PiperBackend

log = logging.getLogger(__name__)


@dataclass
class _LoadedVoice:
    voice: Any  # piper.PiperVoice
    lock: threading.Lock = field(default_factory=threading.Lock)

    def speak(self, text: str, speed: float) -> Audio:
        from piper import SynthesisConfig

        # length_scale is a duration multiplier: faster speech = shorter phonemes
        syn = SynthesisConfig(length_scale=self.voice.config.length_scale / speed)
        with self.lock:
            chunks = [chunk.audio_float_array for chunk in self.voice.synthesize(text, syn)]
        samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
        return Audio(samples, int(self.voice.config.sample_rate))


class PiperNativeBackend(PiperBackend):
    name = "piper_native"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._voices: dict[Path, _LoadedVoice] = {}
        self._load_lock = asyncio.Lock()

    async def start(self) -> None:
        failures = []
        for language, voices in self.config.tts.voices.items():
            if voices.piper:
                try:
                    await self._loaded(voices.piper)
                except LuxaError as err:
                    failures.append(f"{language}: {err}")
        if failures:
            raise BackendError("; ".join(failures))

    async def synthesize(self, request: SpeechRequest) -> Audio:
        loaded = await self._loaded(self.require_voice(request))
        return await asyncio.to_thread(loaded.speak, request.text, request.speed)

    async def close(self) -> None:
        self._voices.clear()

    async def _loaded(self, name: str) -> _LoadedVoice:
        # Shielded: a request cancelled by the chain's timeout while the voice loads (a big voice,
        # a busy CPU) must not throw the loaded voice away, or no later request could ever use it.
        return await asyncio.shield(self._load_once(self.model_path(name)))

    async def _load_once(self, path: Path) -> _LoadedVoice:
        async with self._load_lock:  # two first requests must not load the same voice twice
            if path not in self._voices:
                self._voices[path] = _LoadedVoice(await asyncio.to_thread(self._load, path))
        return self._voices[path]

    def _load(self, path: Path) -> Any:
        from piper import PiperVoice

        use_cuda = self._cuda_available()
        try:
            voice = PiperVoice.load(path, use_cuda=use_cuda) if use_cuda else load_cpu_voice(path, self.config.tts.threads)
        except Exception as err:  # onnxruntime raises its own types for a corrupt model
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise BackendError(f"cannot load Piper voice {path.name}: {first[:200]}") from None
        log.info("Piper voice %s loaded (%s)", path.name, "CUDA" if use_cuda else "CPU")
        return voice

    def _cuda_available(self) -> bool:
        if not self.gpu.on_gpu:
            return False
        import onnxruntime

        return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def load_cpu_voice(path: Path, threads: int, arena: bool = False) -> Any:
    """As PiperVoice.load does, with the session's threads set for a small CPU shared with STT and
    the LLM: onnxruntime's default spins its idle threads, which on 2 cores took the CPU the
    others needed (a 6-word chunk: 260 -> 155 ms p50 alone, 512 -> 353 ms beside Whisper).

    `arena`: onnxruntime's CPU arena keeps what the longest sentence so far needed, for good (+153
    MB after one 189-character sentence), so a daemon's memory stepped up at whichever turn first
    spoke a long sentence. Without it the buffers go back after each chunk (the voice loop trims
    the heap); `bench buffers` measures what that costs. On only for that comparison."""
    import json

    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = arena
    config = PiperConfig.from_dict(json.loads(Path(f"{path}.json").read_text(encoding="utf-8")))
    session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(session=session, config=config)
