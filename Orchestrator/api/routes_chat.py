"""POST /v1/chat: one LLM turn, as JSON or streamed as server-sent events."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from LLM import AnswerStream
from Orchestrator.api.ids import ID_PATTERN
from Orchestrator.api.relay import Relay
from Orchestrator.api.services import Services, services
from Orchestrator.api.uploads import JSON, content_type

router = APIRouter(prefix="/v1", tags=["chat"])


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)
    session_id: str | None = Field(None, pattern=ID_PATTERN,
                                   description="keep a conversation across calls (its own, never the voice loop's)")
    language: str | None = Field(None, max_length=16, description="picks the apology's language if every model fails")
    stream: bool = Field(False, description="stream text/event-stream: 'data: {\"text\": ...}' events, then event 'done'")


class ChatReply(BaseModel):
    reply: str
    backend: str
    latency_ms: float
    first_token_ms: float | None
    session_id: str | None
    intent: str | None = None  # the command that answered (HassGetCurrentTime, ...), when no LLM did


STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}, "text/event-stream": {}},
                         "description": "JSON, or server-sent events when stream=true"}}


@router.post("/chat", response_model=ChatReply, responses=STREAM_RESPONSE,
             dependencies=[Depends(content_type(JSON))])
async def chat(body: ChatRequest, luxa: Services = Depends(services)) -> ChatReply | StreamingResponse:
    luxa.check_text(body.text)
    replies = luxa.assistant.replies  # commands first, then the LLM: the voice loop's path
    conversation = luxa.sessions.get(body.session_id)
    if body.stream:
        slot = await luxa.slot()
        try:
            pieces = replies.stream(body.text, conversation, body.language)  # refuses bad text now, as 422
        except BaseException:
            slot.release()
            raise
        relay = Relay(pieces, slot, "api-chat-stream")
        # the background stop also covers a client gone before the first event was sent
        return StreamingResponse(_events(relay, pieces, body.session_id), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"}, background=BackgroundTask(relay.stop))
    async with luxa.inference():
        answer = replies.stream(body.text, conversation, body.language)
        async for _ in answer:
            pass
    result = answer.result
    return ChatReply(reply=result.reply, backend=result.backend, latency_ms=_ms(result.latency_s),
                     first_token_ms=_ms(result.first_token_s), session_id=body.session_id, intent=result.intent)


async def _events(relay: Relay[str], pieces: AnswerStream, session_id: str | None) -> AsyncIterator[str]:
    try:
        async for piece in relay.items():
            yield f"data: {json.dumps({'text': piece}, ensure_ascii=False)}\n\n"
        if not relay.complete:
            return  # the stream failed: the daemon log says why, the client sees no 'done'
        result = pieces.result  # this answer's own, whatever else streams meanwhile
        done = {"reply": result.reply, "backend": result.backend, "latency_ms": _ms(result.latency_s),
                "first_token_ms": _ms(relay.first_s), "session_id": session_id, "intent": result.intent}
        yield f"event: done\ndata: {json.dumps(done, ensure_ascii=False)}\n\n"
    finally:
        relay.stop()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)
