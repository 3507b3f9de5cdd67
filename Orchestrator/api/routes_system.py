"""GET /health, GET /metrics, GET /v1/models, POST /v1/models/preload and POST /v1/models/llm."""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Literal

import psutil
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from Core.errors import LuxaError, ModelMissingError
from Core.fallback import ChainMember
from Orchestrator.api.errors import ApiError
from Orchestrator.api.openai_common import all_models, model_card
from Orchestrator.api.services import Services, services
from Orchestrator.api.uploads import JSON, content_type
from Orchestrator.service.http import metrics_response

router = APIRouter(tags=["system"])
MIB = 1024 * 1024


@router.get("/health")
async def health(luxa: Services = Depends(services)) -> dict:
    return {"status": "ok", **luxa.state(), "queue_depth": luxa.gate.depth, "sessions": len(luxa.sessions),
            "stages": luxa.assistant.health()}


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def prometheus(request: Request) -> Response:
    return metrics_response(request)


@router.get("/v1/models")
async def models(luxa: Services = Depends(services)) -> dict:
    """What is loaded, where, and what the process holds in memory (the models dominate it); with the
    OpenAI routes on, also OpenAI's list ("object": "list", "data": [{"id", ...}]) of the names they take."""
    assistant = luxa.assistant
    memory = psutil.Process().memory_info()
    listing = {"object": "list", "data": [model_card(name) for name in all_models(assistant)]} \
        if assistant.config.openai.enabled else {}
    return {**listing, "device": dataclasses.asdict(assistant.gpu), "process_rss_mb": round(memory.rss / MIB, 1),
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


async def _load(member: ChainMember[Any]) -> dict:
    # STT backends load with load(); LLM and TTS backends with start(); both are idempotent
    load = getattr(member.backend, "load", None) or member.backend.start
    started = time.perf_counter()
    try:
        await load()
    except LuxaError as err:
        return {"name": member.name, "loaded": False, "error": str(err)}
    return {"name": member.name, "loaded": True, "seconds": round(time.perf_counter() - started, 3)}


class LlmSwapRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(..., min_length=1, max_length=200,
                       description="a known name or a .gguf file under models/ (relative to it)")
    backend: str | None = Field(None, max_length=64, description="the gguf backend to swap; default the first one")

    @field_validator("model")
    @classmethod
    def _inside_models(cls, name: str) -> str:
        """A client names a model, never a file elsewhere on the machine."""
        if name.startswith("/") or any(bad in name for bad in ("..", "\\", ":")) or any(ord(c) < 32 for c in name):
            raise ValueError("name a model, or a .gguf file under models/: no absolute path, no '..'")
        return name


@router.post("/v1/models/llm", dependencies=[Depends(content_type(JSON))])
async def swap_llm(body: LlmSwapRequest, luxa: Services = Depends(services)) -> dict:
    """Hot-swap a local LLM: the new model loads while the old one serves; a turn in flight finishes
    on the old one, the next uses the new one. A refused swap leaves the old model serving."""
    llm = luxa.assistant.llm
    name = body.backend or next((b.name for b in llm.backends if b.kind == "gguf"), None)
    if name is None or name not in {b.name for b in llm.backends}:
        known = ", ".join(b.name for b in llm.backends)
        raise ApiError(404, "unknown_backend", f"no llm backend {body.backend!r} (known: {known})")
    started = time.perf_counter()
    try:
        await llm.swap(name, body.model)
    except ModelMissingError as err:
        raise ApiError(404, "model_not_found", str(err)) from None
    except LuxaError as err:  # not enough memory, a corrupt file, not a local model: the old one serves on
        raise ApiError(409, "swap_refused", str(err)) from None
    health = llm.health()["backends"][name]
    return {"backend": name, "model": health["model"], "path": health["path"],
            "seconds": round(time.perf_counter() - started, 3)}
