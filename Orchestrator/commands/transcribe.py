"""`transcribe FILE... [--json] [--language xx]`: one line per file, the model loaded once.

A bad file is reported on stderr and the others are still transcribed; the exit status is
non-zero when any file failed, so scripts notice.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from Core.errors import LuxaError

if TYPE_CHECKING:
    from STT.transcript import Transcript

if TYPE_CHECKING:
    from Orchestrator.cli import Context

HELP = "transcribe audio files (WAV, FLAC, Ogg/Opus, anything FFmpeg reads), one line per file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files to transcribe")
    parser.add_argument("--json", action="store_true",
                        help='one JSON object per line: {"file","text","language","duration_s","latency_ms"}')
    parser.add_argument("--language", metavar="CODE", default=None,
                        help="spoken language (en, fr, ...); default stt.language, else detected")


async def run(args: argparse.Namespace, ctx: Context) -> int:
    from Core.audio import load_audio
    from STT import RobustSTTManager  # inside run(): the GPU is pinned by now

    manager = RobustSTTManager(ctx.config, ctx.gpu)
    await manager.start()
    failed = 0
    try:
        for path in args.files:
            try:
                audio = load_audio(path)  # its errors already name the file
            except LuxaError as err:
                failed += _report(str(err))
                continue
            try:
                result = await manager.transcribe(audio, args.language)
            except LuxaError as err:
                failed += _report(f"{path}: {err}")
                continue
            print(_line(path, result, args.json), flush=True)
    finally:
        await manager.close()
    return 1 if failed else 0


def _report(message: str) -> int:
    print(f"luxa: error: {message}", file=sys.stderr, flush=True)
    return 1


def _line(path: str, result: Transcript, as_json: bool) -> str:
    if not as_json:
        return f"{path}: {result.text}"
    return json.dumps({
        "file": path,
        "text": result.text,
        "language": result.language,
        "duration_s": round(result.duration_s, 3),
        "latency_ms": round(result.latency_s * 1000, 1),
    }, ensure_ascii=False)
