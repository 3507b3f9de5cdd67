"""POST /v1/chat: one LLM turn, as JSON or streamed as server-sent events."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from LLM import AnswerStream, ChatResult
from Orchestrator.api.ids import ID_PATTERN
from Orchestrator.api.limits import Slot
from Orchestrator.api.services import Services, services
from Orchestrator.api.uploads import JSON, content_type

router = APIRouter(prefix="/v1", tags=["chat"])
log = logging.getLogger(__name__)


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


STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}, "text/event-stream": {}},
                         "description": "JSON, or server-sent events when stream=true"}}


@router.post("/chat", response_model=ChatReply, responses=STREAM_RESPONSE,
             dependencies=[Depends(content_type(JSON))])
async def chat(body: ChatRequest, luxa: Services = Depends(services)) -> ChatReply | StreamingResponse:
    luxa.check_text(body.text)
    llm = luxa.assistant.llm
    conversation = luxa.sessions.get(body.session_id)
    if body.stream:
        slot = await luxa.slot()
        try:
            pieces = llm.stream(body.text, conversation, body.language)  # refuses bad text now, as 422
        except BaseException:
            slot.release()
            raise
        relay = _Relay(pieces, slot)
        # the background stop also covers a client gone before the first event was sent
        return StreamingResponse(relay.events(body.session_id), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"}, background=BackgroundTask(relay.stop))
    async with luxa.inference():
        result = await llm.chat(body.text, conversation, body.language)
    return ChatReply(reply=result.reply, backend=result.backend, latency_ms=_ms(result.latency_s),
                     first_token_ms=_ms(result.first_token_s), session_id=body.session_id)


class _Relay:
    """The LLM stream runs in a task of its own and hands pieces over through a queue.

    When a client hangs up, Starlette cancels the response through an anyio cancel scope, which
    cancels again and again until the task ends; fed straight into the LLM's stream that breaks
    its clean-up. Here the LLM task gets one plain cancel(), as at a barge-in, and keeps the
    inference slot until generation has really stopped.
    """

    def __init__(self, pieces: AnswerStream, slot: Slot) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.result: ChatResult | None = None
        self.started = time.perf_counter()
        self.first_s: float | None = None
        self.slot = slot
        self.stopping = False
        self.task = asyncio.create_task(self._pump(pieces), name="api-chat-stream")
        self.task.add_done_callback(self._finished)

    async def _pump(self, pieces: AnswerStream) -> None:
        try:
            async for piece in pieces:
                if self.first_s is None:
                    self.first_s = time.perf_counter() - self.started
                self.queue.put_nowait(piece)
            self.result = pieces.result  # this answer's own, whatever else streams meanwhile
        finally:
            await pieces.aclose()
            self.queue.put_nowait(None)

    def _finished(self, task: asyncio.Task) -> None:
        self.slot.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("control API: chat stream failed: %s", task.exception())

    def stop(self) -> None:
        """Cancel once: a second cancel() while the LLM unwinds hits the same clean-up failure."""
        if not self.stopping:
            self.stopping = True
            self.task.cancel()  # a no-op once the answer is complete

    async def events(self, session_id: str | None) -> AsyncIterator[str]:
        try:
            while (piece := await self.queue.get()) is not None:
                yield f"data: {json.dumps({'text': piece}, ensure_ascii=False)}\n\n"
            if self.result is None:
                return  # the stream failed: the daemon log says why, the client sees no 'done'
            done = {"reply": self.result.reply, "backend": self.result.backend,
                    "latency_ms": _ms(self.result.latency_s), "first_token_ms": _ms(self.first_s),
                    "session_id": session_id}
            yield f"event: done\ndata: {json.dumps(done, ensure_ascii=False)}\n\n"
        finally:
            self.stop()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)
