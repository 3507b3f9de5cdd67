"""`chat`: one LLM turn from the command line, or a multi-turn chat on stdin that keeps memory."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from LLM import EnhancedLLMManager

if TYPE_CHECKING:
    from Orchestrator.cli import Context


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
    manager = EnhancedLLMManager(ctx.config, ctx.gpu)
    await manager.start()
    try:
        if args.text is not None:
            return await _one_turn(manager, args)
        return await _interactive(manager, args)
    finally:
        await manager.close()


async def _one_turn(manager: EnhancedLLMManager, args: argparse.Namespace) -> int:
    if not args.json:
        await _print_streaming(manager, args.text, args.language)
        return 0
    result = await manager.chat(args.text, language=args.language)
    print(json.dumps({
        "reply": result.reply,
        "latency_ms": round(result.latency_s * 1000, 1),
        "first_token_ms": None if result.first_token_s is None else round(result.first_token_s * 1000, 1),
        "backend": result.backend,
        "tokens": result.tokens,
    }, ensure_ascii=False))
    return 0


async def _interactive(manager: EnhancedLLMManager, args: argparse.Namespace) -> int:
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
            if args.json:
                result = await manager.chat(line, language=args.language)
                print(json.dumps({"reply": result.reply, "backend": result.backend}, ensure_ascii=False), flush=True)
            else:
                await _print_streaming(manager, line, args.language)
        except LuxaError as err:
            print(f"luxa: error: {err}", file=sys.stderr, flush=True)


async def _print_streaming(manager: EnhancedLLMManager, text: str, language: str | None) -> None:
    async for piece in manager.stream(text, language=language):
        print(piece, end="", flush=True)
    print(flush=True)
