"""GET /health, GET /metrics, GET /v1/models and POST /v1/models/preload."""
from __future__ import annotations

import dataclasses
import time
from typing import Literal

import psutil
from fastapi import APIRouter, Depends, Request, Response
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel, ConfigDict, Field

from Core import metrics
from Core.errors import LuxaError
from Orchestrator.api.errors import ApiError
from Orchestrator.api.services import Services, services
from Orchestrator.api.uploads import JSON, content_type

router = APIRouter(tags=["system"])
MIB = 1024 * 1024


@router.get("/health")
async def health(luxa: Services = Depends(services)) -> dict:
    return {"status": "ok", **luxa.state(), "queue_depth": luxa.gate.depth, "sessions": len(luxa.sessions),
            "stages": luxa.assistant.health()}


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def prometheus(request: Request) -> Response:
    # Prometheus asks for OpenMetrics in Accept; curl gets the plain text format
    encode, media_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(metrics.REGISTRY), media_type=media_type)


@router.get("/v1/models")
async def models(luxa: Services = Depends(services)) -> dict:
    """What is loaded, where, and what the process holds in memory (the models dominate it)."""
    assistant = luxa.assistant
    memory = psutil.Process().memory_info()
    return {"device": dataclasses.asdict(assistant.gpu), "process_rss_mb": round(memory.rss / MIB, 1),
            "load_seconds": assistant.load_seconds,
            "stt": assistant.stt.health(), "llm": assistant.llm.health(), "tts": assistant.tts.health()}


class PreloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: Literal["stt", "llm", "tts"]
    backend: str | None = Field(None, max_length=64, description="one backend of the stage; default all of them")


@router.post("/v1/models/preload", dependencies=[Depends(content_type(JSON))])
async def preload(body: PreloadRequest, luxa: Services = Depends(services)) -> dict:
    """Load now what would otherwise load on first use (stt.load=lazy, the clone model)."""
    manager = getattr(luxa.assistant, body.stage)
    members = [m for m in manager.chain.members if body.backend in (None, m.name)]
    if not members:
        left_out = getattr(manager, "left_out", {}).get(body.backend)
        if left_out:
            raise ApiError(409, "backend_unavailable", f"{body.stage} backend {body.backend} is not available: {left_out}")
        known = ", ".join(m.name for m in manager.chain.members)
        raise ApiError(404, "unknown_backend", f"no {body.stage} backend {body.backend!r} (known: {known})")
    async with luxa.inference():
        return {"stage": body.stage, "backends": [await _load(member) for member in members]}


async def _load(member) -> dict:
    # STT backends load with load(); LLM and TTS backends with start(); both are idempotent
    load = getattr(member.backend, "load", None) or member.backend.start
    started = time.perf_counter()
    try:
        await load()
    except LuxaError as err:
        return {"name": member.name, "loaded": False, "error": str(err)}
    return {"name": member.name, "loaded": True, "seconds": round(time.perf_counter() - started, 3)}
