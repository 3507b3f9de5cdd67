"""Slot for the Qwen3-TTS voice-clone backend (issue 6 fills it in).

Until then the slot only decides whether it can run: with `qwen_tts` not installed the
manager leaves it out of the chain with one warning, so enabling it in the config never
costs a failed attempt per sentence.
"""
from __future__ import annotations

import importlib.util

from Core.audio import Audio
from Core.errors import BackendError
from TTS.base import SpeechRequest, TtsBackend


class QwenCloneBackend(TtsBackend):
    name = "qwen_clone"

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("qwen_tts") is None:  # find_spec: never import torch just to check
            return "the qwen_tts package is not installed (pip install '.[clone]')"
        return None

    def voice_for(self, request: SpeechRequest) -> str | None:
        return request.voice or request.clone_voice

    async def synthesize(self, request: SpeechRequest) -> Audio:
        raise BackendError("the qwen_clone backend is not built yet (issue 6)")
