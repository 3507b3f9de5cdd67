"""Voice prompts of the clone backend: create from reference audio, list, show, delete."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile

from Orchestrator.api.ids import checked_id
from Orchestrator.api.services import Services, services
from Orchestrator.api.uploads import MULTIPART, content_type, read_audio

router = APIRouter(prefix="/v1/voices", tags=["voices"])
NOT_BUILT: dict[int | str, dict[str, Any]] = {501: {"description": "the clone backend is not available (the error says why)"}}


@router.post("", status_code=201, responses=NOT_BUILT, dependencies=[Depends(content_type(MULTIPART))])
async def create_voice(file: UploadFile = File(description="reference recording, a few seconds of one speaker"),
                       text: str = Form(min_length=1, description="what the reference recording says"),
                       model: Literal["1.7B", "0.6B"] | None = Form(
                           None, description="Qwen3-TTS Base model size; default tts.clone.model_size"),
                       luxa: Services = Depends(services)) -> dict:
    luxa.voices.require()  # 501 before reading megabytes of audio for nothing
    luxa.check_text(text, "text")
    audio = await read_audio(file, luxa.api.max_audio_bytes)
    async with luxa.inference():
        return await luxa.voices.create(audio, text, model)


@router.get("", responses=NOT_BUILT)
async def list_voices(luxa: Services = Depends(services)) -> dict:
    return {"voices": await luxa.voices.list()}


# `:path` so that an id with slashes reaches the check (422) instead of missing the route (404)
@router.get("/{voice_id:path}")
async def get_voice(voice_id: str, luxa: Services = Depends(services)) -> dict:
    return await luxa.voices.get(checked_id(voice_id, "voice id"))


@router.delete("/{voice_id:path}")
async def delete_voice(voice_id: str, luxa: Services = Depends(services)) -> dict:
    voice_id = checked_id(voice_id, "voice id")
    await luxa.voices.delete(voice_id)
    return {"deleted": voice_id}
