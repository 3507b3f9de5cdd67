"""POST /v1/chat/completions: OpenAI's chat route, answered through Replier like every front door.

A request carries the whole dialogue. Without a session it becomes a one-off conversation (its
system message, or llm.system_prompt, then the earlier turns); with `user` or an X-Luxa-Session
header the daemon keeps the conversation (api.max_sessions) and only the last user message is
new, so the model sees each turn once.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Header
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from LLM import AnswerStream, Conversation, GenerationOptions
from Orchestrator.api.errors import ApiError
from Orchestrator.api.ids import ID_PATTERN
from Orchestrator.api.openai_common import OpenAIRoute, chat_models, unknown_model, unsupported
from Orchestrator.api.relay import Relay
from Orchestrator.api.services import Services, services
from Orchestrator.api.uploads import JSON, content_type

router = APIRouter(prefix="/v1/chat", tags=["openai"], route_class=OpenAIRoute)
SESSION_ID = re.compile(ID_PATTERN)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")  # name, refusal, ...
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # seed, penalties, metadata...: accepted, without effect
    model: str = Field(max_length=200, examples=["luxa"])
    messages: list[Message] = Field(min_length=1, max_length=1000,
                                    examples=[[{"role": "user", "content": "What can you do?"}]])
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    stop: str | list[str] | None = None
    user: str | None = Field(None, max_length=256)
    n: int = Field(1, ge=1, le=128)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[dict] | None = None
    tool_choice: str | dict | None = None
    functions: list[dict] | None = None
    response_format: dict | None = None


@router.post("/completions", dependencies=[Depends(content_type(JSON))], response_model=None,
             responses={200: {"content": {"application/json": {}, "text/event-stream": {}}}})
async def completions(body: CompletionRequest, luxa: Services = Depends(services),
                      x_luxa_session: str | None = Header(None, max_length=64, pattern=ID_PATTERN)) -> StreamingResponse | dict:
    _refuse_unsupported(body)
    if body.model not in chat_models(luxa.assistant):
        raise unknown_model(body.model, chat_models(luxa.assistant))
    if body.messages[-1].role != "user" or not body.messages[-1].text.strip():
        raise ApiError(400, "invalid_request", "messages: the last message must be the user's, with text",
                       param="messages")
    text = body.messages[-1].text
    luxa.check_text(text, "the last user message")
    session = x_luxa_session or _session_id(body.user)
    conversation = luxa.sessions.get(session) if session else _conversation(luxa, body.messages[:-1])
    options = _options(body)
    slot = await luxa.slot()
    try:
        answer = luxa.assistant.replies.stream(text, conversation, None, options=options)  # bad text: 400 now
    except BaseException:
        slot.release()
        raise
    relay = Relay(answer, slot, "api-openai-chat")
    prompt_tokens = sum(luxa.assistant.llm.count_tokens(m["content"]) for m in conversation.messages())
    reply = _Reply(body.model, options.max_tokens or luxa.assistant.config.llm.max_tokens, prompt_tokens)
    if body.stream:
        usage = body.stream_options is not None and body.stream_options.include_usage
        return StreamingResponse(reply.chunks(relay, answer, usage), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"}, background=BackgroundTask(relay.stop))
    try:
        async for _ in relay.items():
            pass
    finally:
        relay.stop()
    if not relay.complete:
        raise ApiError(500, "internal", "the answer failed; the daemon log says why")
    return reply.completion(answer)


def _refuse_unsupported(body: CompletionRequest) -> None:
    if body.n != 1:
        raise unsupported("n", "one choice per request only")
    if body.tools or body.functions or body.tool_choice not in (None, "none"):
        raise unsupported("tools", "tool and function calls are not supported")
    if body.logprobs or body.top_logprobs:
        raise unsupported("logprobs", "log probabilities are not reported")
    if body.response_format and body.response_format.get("type", "text") != "text":
        raise unsupported("response_format", "only text answers")


def _session_id(user: str | None) -> str | None:
    """A `user` that is a valid id names the session; any other string is hashed into one."""
    if not user:
        return None
    return user if SESSION_ID.fullmatch(user) else "u" + hashlib.sha256(user.encode()).hexdigest()[:40]


def _conversation(luxa: Services, earlier: list[Message]) -> Conversation:
    llm = luxa.assistant.llm
    system = "\n".join(m.text for m in earlier if m.role in ("system", "developer"))
    budget = llm.config.llm.history_token_budget
    conversation = Conversation(system, budget, llm.count_tokens) if system else llm.new_conversation()
    for message in earlier:
        if message.role == "user":
            conversation.add_user(message.text)
        elif message.role == "assistant":
            conversation.add_assistant(message.text)
    return conversation


def _options(body: CompletionRequest) -> GenerationOptions:
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    # a client that reads gets the whole answer, not the voice's two sentences
    return GenerationOptions(body.max_completion_tokens or body.max_tokens, body.temperature, tuple(stop), max_sentences=0)


class _Reply:
    def __init__(self, model: str, max_tokens: int, prompt_tokens: int) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.max_tokens = max_tokens
        self.prompt_tokens = prompt_tokens  # the conversation as the model saw it, this question included

    def _finish(self, answer: AnswerStream) -> str:
        return "length" if answer.result.tokens >= self.max_tokens else "stop"

    def _usage(self, answer: AnswerStream) -> dict:
        tokens = answer.result.tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": tokens,
                "total_tokens": self.prompt_tokens + tokens}

    def _head(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": None}

    def completion(self, answer: AnswerStream) -> dict:
        message = {"role": "assistant", "content": answer.result.reply}
        return {**self._head("chat.completion"), "usage": self._usage(answer),
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self._finish(answer)}]}

    def _chunk(self, delta: dict, finish: str | None = None) -> str:
        chunk = {**self._head("chat.completion.chunk"),
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    async def chunks(self, relay: Relay[str], answer: AnswerStream, usage: bool) -> AsyncIterator[str]:
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            async for piece in relay.items():
                yield self._chunk({"content": piece})
            if not relay.complete:
                return  # failed: the daemon log says why; the client sees no [DONE]
            yield self._chunk({}, self._finish(answer))
            if usage:
                tail = {**self._head("chat.completion.chunk"), "choices": [], "usage": self._usage(answer)}
                yield f"data: {json.dumps(tail)}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            relay.stop()
