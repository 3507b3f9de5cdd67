"""Voice prompts of the Qwen3-TTS clone backend (TTS/qwen_clone.py), as the API sees them.

The routes use the backend the TTS chain already holds: its `store` (TTS.voice_prompts) for
list/get/delete, and its blocking `create_voice` (reference file path in, stored prompt out) on
a worker thread. The store owns ids, expiry and eviction; this module only turns its records and
errors into HTTP. Without the backend in the chain (disabled, or qwen-tts missing), creating and
listing answer 501 with the reason, and a given id is simply unknown (404).
"""
from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

from Core.audio import Audio, write_wav
from Core.errors import BackendError, LuxaError, ModelMissingError
from Orchestrator.api.errors import ApiError, from_luxa
from TTS.voice_prompts import VoicePrompt, VoicePromptError

if TYPE_CHECKING:  # for mypy only: the daemon has loaded them, the module stays light
    from TTS.manager import UnifiedTTSManager
    from TTS.qwen_clone import QwenCloneBackend

CLONE_BACKEND = "qwen_clone"


class Voices:
    """Calls into the clone backend when the chain has it, else raises 501 with the reason."""

    def __init__(self, tts: UnifiedTTSManager) -> None:
        self.backend, self.reason = _find_backend(tts)

    def require(self) -> QwenCloneBackend:
        if self.backend is None:
            raise ApiError(501, "clone_unavailable", f"voice prompts need the {CLONE_BACKEND} TTS backend: {self.reason}")
        return self.backend

    async def create(self, reference: Audio, ref_text: str, model: str | None) -> dict:
        backend = self.require()
        try:
            prompt = await asyncio.to_thread(_create_from_audio, backend, reference, ref_text, model)
        except ModelMissingError as err:  # this size has no weights here: nothing the client can fix
            raise ApiError(501, "clone_unavailable", str(err)) from None
        except BackendError as err:
            raise from_luxa(err) from None
        except LuxaError as err:  # the recording or its transcript (too short, silent, empty text)
            raise ApiError(422, "invalid_input", str(err)) from None
        return record_json(prompt)

    async def list(self) -> list[dict]:
        prompts = await asyncio.to_thread(self.require().store.list)
        return [record_json(p) for p in prompts]

    async def get(self, voice_id: str) -> dict:
        """404 for an id the store does not hold (or holds expired), and for any id without a backend."""
        if self.backend is None:
            raise _unknown(voice_id, f" (the {CLONE_BACKEND} backend is unavailable: {self.reason})")
        try:
            prompt, _ = await asyncio.to_thread(self.require().store.get, voice_id)
        except VoicePromptError as err:
            raise _unknown(voice_id, f": {err}") from None
        return record_json(prompt)

    async def delete(self, voice_id: str) -> None:
        await self.get(voice_id)  # the same 404 (with the unavailable reason) as a lookup
        try:
            await asyncio.to_thread(self.require().store.delete, voice_id)
        except VoicePromptError as err:  # deleted by another request in between
            raise _unknown(voice_id, f": {err}") from None


def _find_backend(tts: UnifiedTTSManager) -> tuple[QwenCloneBackend | None, str]:
    if CLONE_BACKEND in tts.left_out:
        return None, tts.left_out[CLONE_BACKEND]
    for member in tts.chain.members:
        if member.name == CLONE_BACKEND:
            return cast("QwenCloneBackend", member.backend), ""
    return None, "it is not in the TTS chain"


def _create_from_audio(backend: QwenCloneBackend, reference: Audio, ref_text: str, model: str | None) -> VoicePrompt:
    """create_voice reads a file: the decoded upload goes through a private temporary WAV, removed
    here on the worker thread once the prompt exists (a client hang-up cannot pull it away mid-read)."""
    with tempfile.TemporaryDirectory(prefix="luxa-voice-") as folder:
        path = Path(folder) / "reference.wav"
        write_wav(path, reference)
        try:
            return backend.create_voice(path, ref_text, model)
        except LuxaError as err:  # the message names our temporary file, which means nothing to the client
            raise type(err)(str(err).replace(f" {path}", "")) from None


def _unknown(voice_id: str, why: str) -> ApiError:
    return ApiError(404, "unknown_voice", f"no voice prompt with id {voice_id!r}{why}")


def record_json(prompt: VoicePrompt) -> dict:
    """What a client may see: never the arrays, nor the daemon's path to the reference."""
    expires_in = None if prompt.expires_at is None else round(max(0.0, prompt.expires_at - time.time()), 1)
    return {"id": prompt.id, "model": prompt.model_size, "created_at": prompt.created_at,
            "expires_in": expires_in, "ref_text": prompt.ref_text, "similarity": prompt.similarity}
