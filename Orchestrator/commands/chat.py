"""`chat`: one turn from the command line, or a multi-turn chat on stdin that keeps memory.

It answers through the same path as the voice loop: commands (time, timers, devices) first, then
the LLM.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from LLM.manager import ChatResult
    from Orchestrator.cli import Context
    from Orchestrator.reply import Replier


HELP = 'one LLM turn: chat "text" [--json]; with no text, chat line by line on stdin (memory kept)'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", default=None, help="what to say; leave out to chat on stdin until EOF")
    parser.add_argument("--json", action="store_true", help='print {"reply","latency_ms","first_token_ms","backend","tokens"}')
    parser.add_argument("--language", default=None, help="the user's language (picks the apology when every model fails)")


async def run(args: argparse.Namespace, ctx: Context) -> int:
    from LLM import EnhancedLLMManager  # here, not at the top: the GPU is pinned before llama.cpp loads
    from LLM.inputs import check_user_text

    if args.text is not None:
        check_user_text(args.text, ctx.config.llm.max_input_chars)  # bad input fails before a model loads
    from Orchestrator.intents import Intents
    from Orchestrator.reply import Replier

    manager = EnhancedLLMManager(ctx.config, ctx.gpu)
    intents = Intents(ctx.config) if ctx.config.intents.enabled else None
    await asyncio.gather(manager.start(), *([intents.start()] if intents else []))
    replier = Replier(manager, intents)
    try:
        if args.text is not None:
            return await _one_turn(replier, args)
        return await _interactive(replier, args)
    finally:
        await manager.close()
        if intents is not None:
            await intents.close()


async def _answer(replier: Replier, text: str, language: str | None, show: bool) -> ChatResult:
    """The whole answer's result; with `show`, its text printed as it streams."""
    answer = replier.stream(text, language=language)
    async for piece in answer:
        if show:
            print(piece, end="", flush=True)
    if show:
        print(flush=True)
    return answer.result


async def _one_turn(replier: Replier, args: argparse.Namespace) -> int:
    if not args.json:
        await _answer(replier, args.text, args.language, show=True)
        return 0
    result = await _answer(replier, args.text, args.language, show=False)
    print(json.dumps({
        "reply": result.reply,
        "latency_ms": round(result.latency_s * 1000, 1),
        "first_token_ms": None if result.first_token_s is None else round(result.first_token_s * 1000, 1),
        "backend": result.backend,
        "tokens": result.tokens,
        "intent": result.intent,
    }, ensure_ascii=False))
    return 0


async def _interactive(replier: Replier, args: argparse.Namespace) -> int:
    """Read a line, stream the reply, repeat; a bad line is reported and the chat goes on."""
    from Core.errors import LuxaError

    prompt = "you> " if sys.stdin.isatty() else ""
    while True:
        if prompt:
            print(prompt, end="", flush=True)
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return 0
        if not line.strip():
            continue
        try:
            result = await _answer(replier, line, args.language, show=not args.json)
            if args.json:
                print(json.dumps({"reply": result.reply, "backend": result.backend, "intent": result.intent},
                                 ensure_ascii=False), flush=True)
        except LuxaError as err:
            print(f"luxa: error: {err}", file=sys.stderr, flush=True)
