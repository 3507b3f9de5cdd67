"""What the OpenAI-compatible routes share: OpenAI's status for bad requests, and the model names.

OpenAI answers a request it cannot take with 400 (its clients raise BadRequestError), where the
control API's own routes say 422; the error body has the same shape everywhere (errors.py).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from Core.errors import LuxaError
from Orchestrator.api.errors import ApiError, from_luxa, one_line
from TTS.manager import EMERGENCY

if TYPE_CHECKING:  # for mypy only: the daemon has loaded it
    from Orchestrator.assistant import Assistant

OWNER = "luxa"
STARTED = int(time.time())  # "created" of every model: they are the daemon's, loaded at start


class OpenAIRoute(APIRoute):
    """Refusals of the caller's request leave as 400 with the offending parameter named."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def openai_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as err:
                raise ApiError(400, "invalid_request", one_line(err.errors()), param=_param(err.errors())) from None
            except ApiError as err:
                raise _as_400(err) from None
            except LuxaError as err:
                raise _as_400(from_luxa(err)) from None

        return openai_handler


def _as_400(err: ApiError) -> ApiError:
    if err.status == 422:
        err.status = 400
    return err


def _param(errors: Sequence[Any]) -> str | None:
    """The field a validation error is about: ('body', 'messages', 0, 'role') -> 'messages'."""
    for error in errors[:1]:
        where = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "form")]
        return where[0] if where else None
    return None


def unsupported(param: str, why: str) -> ApiError:
    return ApiError(400, "unsupported_parameter", f"{param}: {why}", param=param)


def unknown_model(model: str, known: list[str]) -> ApiError:
    return ApiError(404, "model_not_found", f"model {model!r} does not exist here (known: {', '.join(known)})",
                    param="model")


def model_card(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": STARTED, "owned_by": OWNER}


def stt_models(assistant: Assistant) -> dict[str, str | None]:
    """Model name -> STT backend: the aliases mean the whole chain, a backend's name or model that backend."""
    names: dict[str, str | None] = dict.fromkeys(assistant.config.openai.stt_models)
    for member in assistant.stt.chain.members:
        names.setdefault(member.name, member.name)
        names.setdefault(assistant.config.stt.backends[member.name].model, member.name)
    return names


def tts_models(assistant: Assistant) -> dict[str, str | None]:
    """Model name -> forced TTS backend (None: the chain); the emergency silence is no model."""
    names: dict[str, str | None] = dict.fromkeys(assistant.config.openai.tts_models)
    for member in assistant.tts.chain.members:
        if member.name != EMERGENCY:
            names.setdefault(member.name, member.name)
    return names


def chat_models(assistant: Assistant) -> list[str]:
    """Every name answers through the same chain (intents, then the LLMs in order)."""
    names = list(assistant.config.openai.chat_models)
    names += [b.model for b in assistant.llm.backends if b.model not in names]
    return names


def all_models(assistant: Assistant) -> list[str]:
    return list(dict.fromkeys([*chat_models(assistant), *stt_models(assistant), *tts_models(assistant)]))
