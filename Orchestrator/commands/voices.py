"""`voices create REF.wav --text "..." [--model 0.6B|1.7B]`, `voices list`, `voices delete ID`.

`create` prints only the new id on stdout (scripts capture it: `say --voice $(voices create ...)`);
the similarity report goes to stderr. `list` and `delete` need neither qwen-tts nor the weights.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from TTS.voice_prompts import VoicePrompt

if TYPE_CHECKING:
    from Orchestrator.cli import Context

HELP = "clone voices for the qwen_clone TTS backend: voices create REF.wav --text \"...\" | list | delete ID"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="make a voice from a few seconds of one speaker; prints its id")
    create.add_argument("reference", metavar="REF.wav", help="reference recording (WAV, FLAC, Ogg...)")
    create.add_argument("--text", required=True, help="exactly what the recording says")
    create.add_argument("--model", choices=["0.6B", "1.7B"], default=None,
                        help="Qwen3-TTS Base size (default tts.clone.model_size)")
    create.add_argument("--language", default=None, help="language of the similarity check (default tts.default_language)")
    listing = sub.add_parser("list", help="stored voices, most recently used first")
    listing.add_argument("--json", action="store_true", help="one JSON object per voice")
    delete = sub.add_parser("delete", help="forget a voice")
    delete.add_argument("id", help="voice id from `voices list`")


async def run(args: argparse.Namespace, ctx: Context) -> int:
    from TTS.qwen_clone import QwenCloneBackend, prompt_store  # inside run(): the GPU is pinned by now

    if args.action == "list":
        _print_list(prompt_store(ctx.config).list(), args.json)
    elif args.action == "delete":
        prompt_store(ctx.config).delete(args.id)
        print(f"voice {args.id} deleted")
    else:
        backend = QwenCloneBackend(ctx.config, ctx.config.tts.backends["qwen_clone"], ctx.gpu)
        prompt = await asyncio.to_thread(backend.create_voice, args.reference, args.text, args.model, args.language)
        print(prompt.id)
        score = "not measured" if prompt.similarity is None else f"{prompt.similarity:.2f}"
        print(f"voice {prompt.id}: {prompt.model_size}, similarity {score} "
              f"(threshold {ctx.config.tts.clone.similarity_threshold:g})", file=sys.stderr)
    return 0


def _print_list(prompts: list[VoicePrompt], as_json: bool) -> None:
    if as_json:
        for p in prompts:
            print(json.dumps({"id": p.id, "model": p.model_size, "text": p.ref_text, "reference": p.ref_audio,
                              "created_at": p.created_at, "expires_at": p.expires_at, "similarity": p.similarity}))
        return
    if not prompts:
        print("no voices yet: run_assistant.py voices create REF.wav --text \"what it says\"")
    for p in prompts:
        expires = "never" if p.expires_at is None else time.strftime("%Y-%m-%d", time.localtime(p.expires_at))
        score = "-" if p.similarity is None else f"{p.similarity:.2f}"
        print(f"{p.id}  {p.model_size:>4}  similarity {score:>4}  expires {expires}  \"{_short(p.ref_text)}\"")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
