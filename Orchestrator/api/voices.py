"""Voice prompts of the Qwen3-TTS clone backend, as the API sees them.

The contract with the clone backend (TTS/qwen_clone.py, issue 6): its backend object exposes a
`voices` attribute implementing VoicePromptStore. Methods may be plain or async. Records may be
dataclasses or mappings; their scalar fields (id, model, created_at, expires_at or expires_in,
ref_text...) are returned as JSON. Without a clone backend in the TTS chain, or without that
attribute, creating and listing answer 501 and say why; a given id is simply unknown (404).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import time
from collections.abc import Mapping
from typing import Any, Protocol

from Core.audio import Audio
from Orchestrator.api.errors import ApiError

CLONE_BACKEND = "qwen_clone"
_SCALARS = (str, int, float, bool, type(None))


class VoicePromptStore(Protocol):
    def create(self, ref_audio: Audio, ref_text: str, model: str) -> Any: ...
    def list(self) -> list[Any]: ...
    def delete(self, voice_id: str) -> Any: ...
    def get(self, voice_id: str) -> Any | None: ...


class Voices:
    """Calls into the store when there is one, else raises 501 with the reason."""

    def __init__(self, tts) -> None:
        self.store, self.reason = _find_store(tts)

    def require(self) -> VoicePromptStore:
        if self.store is None:
            raise ApiError(501, "clone_unavailable", f"voice prompts need the {CLONE_BACKEND} TTS backend: {self.reason}")
        return self.store

    async def create(self, ref_audio: Audio, ref_text: str, model: str) -> dict:
        return record_json(await _maybe_await(self.require().create(ref_audio, ref_text, model)))

    async def list(self) -> list[dict]:
        return [record_json(r) for r in await _maybe_await(self.require().list())]

    async def get(self, voice_id: str) -> dict:
        """404 for an id the store does not hold, and for any id when there is no store at all."""
        record = None if self.store is None else await _maybe_await(self.store.get(voice_id))
        if record is None:
            why = f" (the {CLONE_BACKEND} backend is unavailable: {self.reason})" if self.store is None else ""
            raise ApiError(404, "unknown_voice", f"no voice prompt with id {voice_id!r}{why}")
        return record_json(record)

    async def delete(self, voice_id: str) -> None:
        await self.get(voice_id)  # 404 for an unknown id, whatever delete() returns for it
        await _maybe_await(self.require().delete(voice_id))


def _find_store(tts) -> tuple[VoicePromptStore | None, str]:
    if CLONE_BACKEND in tts.left_out:
        return None, tts.left_out[CLONE_BACKEND]
    for member in tts.chain.members:
        if member.name == CLONE_BACKEND:
            store = getattr(member.backend, "voices", None)
            if store is None:
                return None, "this clone backend keeps no voice prompt store"
            return store, ""
    return None, "it is not in the TTS chain"


async def _maybe_await(value):
    return await value if inspect.isawaitable(value) else value


def record_json(record: Any) -> dict:
    """The record's plain fields; tensors and other bulky values stay inside the daemon."""
    if dataclasses.is_dataclass(record):
        fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    elif isinstance(record, Mapping):
        fields = dict(record)
    else:
        fields = dict(vars(record))
    out = {}
    for name, value in fields.items():
        if isinstance(value, (dt.datetime, dt.date)):
            value = value.isoformat()
        if isinstance(value, _SCALARS) and not name.startswith("_"):
            out[name] = value
    expires_at = fields.get("expires_at")
    if "expires_in" not in out and isinstance(expires_at, (int, float)):
        out["expires_in"] = round(max(0.0, expires_at - time.time()), 1)
    return out
