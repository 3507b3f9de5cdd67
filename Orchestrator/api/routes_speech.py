"""POST /v1/say (text -> WAV) and POST /v1/transcribe (audio upload -> text)."""
from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from Orchestrator.api.services import Services, services
from Orchestrator.api.uploads import JSON, MULTIPART, content_type, read_audio

router = APIRouter(prefix="/v1", tags=["speech"])


class SayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, description="what to say; longer than api.max_text_chars is refused (413)")
    voice: str | None = Field(None, max_length=200, description="a Piper voice, an espeak-ng voice or a voice prompt id")
    language: str | None = Field(None, max_length=35,
                                 description="language code picking the voice (default tts.default_language)")
    speed: float | None = Field(None, description="speaking rate, 1.0 = normal (range of tts.speed)")
    backend: str | None = Field(None, max_length=64, description="force one TTS backend (piper_native, piper_cli, ...)")
    format: Literal["wav"] = "wav"


class Transcription(BaseModel):
    text: str
    language: str | None
    probability: float
    duration_s: float
    latency_ms: float
    backend: str


WAV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"audio/wav": {}},
                      "description": "16-bit PCM WAV; headers X-Luxa-Backend, X-Luxa-Latency-Ms, X-Luxa-Cached"}}


@router.post("/say", response_class=Response, responses=WAV_RESPONSE, dependencies=[Depends(content_type(JSON))])
async def say(body: SayRequest, luxa: Services = Depends(services)) -> Response:
    luxa.check_text(body.text)
    async with luxa.inference():
        result = await luxa.assistant.tts.synthesize(body.text, voice=body.voice, speed=body.speed,
                                                     language=body.language, backend=body.backend)
    wav = await asyncio.to_thread(result.audio.wav_bytes)
    return Response(wav, media_type="audio/wav", headers={
        "X-Luxa-Backend": result.backend,
        "X-Luxa-Latency-Ms": f"{result.latency_s * 1000.0:.1f}",
        "X-Luxa-Cached": "true" if result.cached else "false",
    })


@router.post("/transcribe", response_model=Transcription, dependencies=[Depends(content_type(MULTIPART))])
async def transcribe(file: UploadFile = File(description="the audio: WAV, FLAC, Ogg/Opus or anything FFmpeg reads"),
                     language: str | None = Form(None, max_length=16, description="spoken language; default detected"),
                     luxa: Services = Depends(services)) -> Transcription:
    audio = await read_audio(file, luxa.api.max_audio_bytes)
    async with luxa.inference():
        result = await luxa.assistant.stt.transcribe(audio, language or None)
    return Transcription(text=result.text, language=result.language, probability=round(result.probability, 3),
                         duration_s=round(result.duration_s, 3), latency_ms=round(result.latency_s * 1000.0, 1),
                         backend=result.backend)
