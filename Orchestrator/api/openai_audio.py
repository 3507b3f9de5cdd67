"""OpenAI's audio routes: transcriptions, translations, speech, and the voice and model lists.

Backed by the daemon's own STT and TTS chains, behind the same key, limits and inference gate
as the control API (the voice loop goes first).
"""
from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from Core.models import installed_extra
from Core.sentences import split_sentences
from Core.text import sanitize, speakable
from Orchestrator.api import audio_formats, subtitles
from Orchestrator.api.errors import ApiError
from Orchestrator.api.openai_common import OpenAIRoute, stt_models, tts_models, unknown_model
from Orchestrator.api.relay import Relay
from Orchestrator.api.services import Services, services
from Orchestrator.api.uploads import JSON, MULTIPART, content_type, read_audio
from STT.transcript import DecodeOptions, Segment, Transcript
from TTS.answer import AnswerSession
from TTS.base import TTSResult

router = APIRouter(prefix="/v1/audio", tags=["openai"], route_class=OpenAIRoute)

TextFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
SSE_HEADERS = {"Cache-Control": "no-store"}


@router.post("/transcriptions", dependencies=[Depends(content_type(MULTIPART))],
             responses={200: {"content": {"application/json": {}, "text/plain": {}, "text/event-stream": {}}}})
async def transcriptions(
        file: UploadFile = File(description="the audio: anything FFmpeg reads"),
        model: str = Form(max_length=200, examples=["whisper-1"],
                          description="whisper-1 (the STT chain) or an STT backend or model name"),
        language: str | None = Form(None, max_length=16, description="spoken language (ISO 639-1); default detected"),
        prompt: str | None = Form(None, max_length=2000, description="earlier text or spellings to follow"),
        temperature: float = Form(0.0, ge=0.0, le=1.0, description="0: Whisper's fallback ladder"),
        response_format: TextFormat = Form("json"),
        granularities: list[Literal["word", "segment"]] = Form(["segment"], alias="timestamp_granularities[]"),
        stream: bool = Form(False, description="server-sent events transcript.text.delta, then .done"),
        luxa: Services = Depends(services)) -> Response:
    options = DecodeOptions("transcribe", prompt, temperature, "word" in granularities)
    return await _text_route(luxa, file, model, language, options, response_format, stream)


@router.post("/translations", dependencies=[Depends(content_type(MULTIPART))],
             responses={200: {"content": {"application/json": {}, "text/plain": {}, "text/event-stream": {}}}})
async def translations(
        file: UploadFile = File(description="speech in any language Whisper knows"),
        model: str = Form(max_length=200, examples=["whisper-1"],
                          description="whisper-1 or a multilingual STT backend or model name"),
        language: str | None = Form(None, max_length=16, description="the spoken language, if known"),
        prompt: str | None = Form(None, max_length=2000, description="earlier text, in English"),
        temperature: float = Form(0.0, ge=0.0, le=1.0),
        response_format: TextFormat = Form("json"),
        stream: bool = Form(False),
        luxa: Services = Depends(services)) -> Response:
    options = DecodeOptions("translate", prompt, temperature)
    return await _text_route(luxa, file, model, language, options, response_format, stream)


async def _text_route(luxa: Services, file: UploadFile, model: str, language: str | None, options: DecodeOptions,
                      response_format: str, stream: bool) -> Response:
    names = stt_models(luxa.assistant)
    if model not in names:
        raise unknown_model(model, list(names))
    audio = await read_audio(file, luxa.api.max_audio_bytes)
    async with luxa.inference():
        result = await luxa.assistant.stt.transcribe(audio, language or None, options, names[model])
    if stream:
        return StreamingResponse(_transcript_events(result), media_type="text/event-stream", headers=SSE_HEADERS)
    return _transcript_response(result, options, response_format)


def _usage(result: Transcript) -> dict:
    return {"type": "duration", "seconds": math.ceil(result.duration_s)}


def _transcript_response(result: Transcript, options: DecodeOptions, response_format: str) -> Response:
    headers = {"X-Luxa-Backend": result.backend, "X-Luxa-Latency-Ms": f"{result.latency_s * 1000.0:.1f}"}
    if response_format == "text":
        return PlainTextResponse(result.text + "\n", headers=headers)
    if response_format == "srt":
        return PlainTextResponse(subtitles.srt(result.segments), headers=headers)
    if response_format == "vtt":
        return PlainTextResponse(subtitles.vtt(result.segments), media_type="text/vtt", headers=headers)
    if response_format == "json":
        return JSONResponse({"text": result.text, "usage": _usage(result)}, headers=headers)
    body = {"task": options.task, "language": result.language, "duration": round(result.duration_s, 3),
            "text": result.text, "segments": [_segment_json(s) for s in result.segments], "usage": _usage(result)}
    if options.word_timestamps:
        body["words"] = [{"word": w.word.strip(), "start": w.start, "end": w.end}
                         for s in result.segments for w in s.words]
    return JSONResponse(body, headers=headers)


def _segment_json(segment: Segment) -> dict:
    return {"id": segment.id, "seek": segment.seek, "start": segment.start, "end": segment.end,
            "text": segment.text, "tokens": list(segment.tokens), "temperature": segment.temperature,
            "avg_logprob": segment.avg_logprob, "compression_ratio": segment.compression_ratio,
            "no_speech_prob": segment.no_speech_prob}


async def _transcript_events(result: Transcript) -> AsyncIterator[str]:
    """OpenAI's transcript events, one delta per segment (Whisper decodes a clip as a whole here)."""
    for segment in result.segments:
        yield _sse({"type": "transcript.text.delta", "delta": segment.text})
    yield _sse({"type": "transcript.text.done", "text": result.text, "usage": _usage(result)})


class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI clients send fields of newer models (instructions, ...)
    model: str = Field(max_length=200, examples=["tts-1"],
                       description="tts-1 (the TTS chain) or a TTS backend name (forces it)")
    input: str = Field(min_length=1, examples=["The washing machine has finished."],
                       description="what to say; longer than api.max_text_chars is refused (413)")
    voice: str = Field(max_length=200, examples=["alloy"],
                       description="an OpenAI voice name (openai.voices) or a LUXA voice id")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] | None = Field(
        None, description="audio: chunked, sentence by sentence; sse: speech.audio.delta events; none: one file")


@router.post("/speech", response_class=Response, dependencies=[Depends(content_type(JSON))],
             responses={200: {"content": {"audio/mpeg": {}, "audio/wav": {}, "text/event-stream": {}}}})
async def speech(body: SpeechRequest, luxa: Services = Depends(services)) -> Response:
    luxa.check_text(body.input, "input")
    names = tts_models(luxa.assistant)
    if body.model not in names:
        raise unknown_model(body.model, list(names))
    if body.response_format not in audio_formats.available():
        raise ApiError(400, "unsupported_format", f"response_format {body.response_format}: this FFmpeg build "
                       f"has no encoder for it (here: {', '.join(audio_formats.available())})", param="response_format")
    tts = luxa.assistant.tts
    voice = luxa.assistant.config.openai.voices.get(body.voice, body.voice)
    fmt = audio_formats.FORMATS[body.response_format]
    if body.stream_format is None:
        async with luxa.inference():
            result = await tts.synthesize(body.input, voice=voice, speed=body.speed, backend=names[body.model])
        data = await asyncio.to_thread(audio_formats.encode_whole, result.audio, body.response_format)
        return Response(data, media_type=fmt.media_type, headers={"X-Luxa-Backend": result.backend})
    slot = await luxa.slot()
    try:  # checks the voice, speed and text now: an error status, not a broken stream
        session = tts.answer(voice, body.speed, None, names[body.model])
        text = sanitize(body.input, luxa.assistant.config.tts.max_input_chars)
        spoken = _spoken(session, [s for s in split_sentences(text) if speakable(s)])
    except BaseException:
        slot.release()
        raise
    relay = Relay(_encoded(spoken, audio_formats.Encoder(body.response_format)), slot, "api-openai-speech")
    if body.stream_format == "sse":
        return StreamingResponse(_speech_events(relay, len(body.input)), media_type="text/event-stream",
                                 headers=SSE_HEADERS, background=BackgroundTask(relay.stop))
    return StreamingResponse(_relayed(relay), media_type=fmt.media_type, background=BackgroundTask(relay.stop))


async def _spoken(session: AnswerSession, sentences: list[str]) -> AsyncGenerator[TTSResult, None]:
    """Each sentence's audio as soon as it is synthesised, all in the answer's one voice."""
    for sentence in sentences:
        yield await session.say(sentence)


async def _encoded(spoken: AsyncGenerator[TTSResult, None], encoder: audio_formats.Encoder) -> AsyncIterator[bytes]:
    """Each sentence's audio encoded as soon as it is synthesised; the container's tail at the end."""
    try:
        async for result in spoken:
            if data := await asyncio.to_thread(encoder.feed, result.audio):
                yield data
        if tail := await asyncio.to_thread(encoder.finish):
            yield tail
    finally:
        await spoken.aclose()


async def _relayed(relay: Relay[bytes]) -> AsyncIterator[bytes]:
    try:
        async for data in relay.items():
            yield data
    finally:
        relay.stop()


async def _speech_events(relay: Relay[bytes], characters: int) -> AsyncIterator[str]:
    try:
        async for data in relay.items():
            yield _sse({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})
        if relay.complete:
            usage = {"input_tokens": characters, "output_tokens": 0, "total_tokens": characters}
            yield _sse({"type": "speech.audio.done", "usage": usage})
    finally:
        relay.stop()


def _sse(event: dict) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


@router.get("/voices")
async def voices(luxa: Services = Depends(services)) -> dict:
    """Open WebUI's shape: {"voices": [{"id", "name"}]}; the OpenAI names first, then LUXA's own."""
    assistant = luxa.assistant
    found = {name: f"{name} ({target or 'default voice'})" for name, target in assistant.config.openai.voices.items()}
    for language, configured in assistant.config.tts.voices.items():
        for voice in (configured.piper, configured.system):
            if voice:
                found.setdefault(voice, f"{voice} ({language})")
    for model in installed_extra(assistant.config.models.dir):
        if model.kind == "piper":
            found.setdefault(model.name, f"{model.name} (Piper)")
    if luxa.voices.backend is not None:
        for prompt in await luxa.voices.list():
            found.setdefault(prompt["id"], f"{prompt['id']} (cloned)")
    return {"voices": [{"id": voice_id, "name": name} for voice_id, name in found.items()]}


@router.get("/models")
async def audio_models(luxa: Services = Depends(services)) -> dict:
    """Open WebUI's shape for its TTS model list: {"models": [{"id"}]}."""
    return {"models": [{"id": name} for name in tts_models(luxa.assistant)]}
