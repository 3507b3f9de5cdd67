"""`say`: synthesise text into a WAV file through the TTS chain (or one forced backend).

Exits 0 even when every engine is broken: the file then holds the emergency silence and the
log has a CRITICAL line, exactly what the voice loop would do, so scripts can rely on a file.
"""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from Core.errors import LuxaError

if TYPE_CHECKING:
    from Orchestrator.cli import Context


HELP = "synthesise text to a WAV file: say \"text\" -o out.wav [--backend NAME] [--language xx] [--json]"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="what to say")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.wav", help="where to write the WAV")
    parser.add_argument("--backend", default=None,
                        help="use only this backend (piper_native, piper_cli, system_voice, qwen_clone, silent_emergency)")
    parser.add_argument("--language", default=None, help="language code picking the voice (default tts.default_language)")
    parser.add_argument("--voice", default=None,
                        help="a Piper voice name, an espeak-ng voice, or a clone voice id (`voices list`)")
    parser.add_argument("--speed", type=float, default=None, help="speaking rate (1.0 = normal; default tts.speed)")
    parser.add_argument("--json", action="store_true", help='print {"backend","latency_ms","cached","audio_s"}')


async def run(args: argparse.Namespace, ctx: Context) -> int:
    from Core.audio import write_wav
    from Core.text import sanitize
    from TTS import UnifiedTTSManager
    from TTS.qwen_clone import enable_for_voice

    sanitize(args.text, ctx.config.tts.max_input_chars)  # refuse empty or binary text before spending seconds loading voices
    manager = UnifiedTTSManager(enable_for_voice(ctx.config, args.voice), ctx.gpu)
    await manager.start()
    try:
        result = await manager.synthesize(args.text, voice=args.voice, speed=args.speed,
                                          language=args.language, backend=args.backend)
    finally:
        await manager.close()
    try:
        write_wav(args.output, result.audio)
    except OSError as err:
        raise LuxaError(f"cannot write {args.output}: {err.strerror or err}") from None
    report = {"backend": result.backend, "latency_ms": round(result.latency_s * 1000.0, 1),
              "cached": result.cached, "audio_s": round(result.audio.duration_s, 3)}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.output}: {report['audio_s']} s of audio from {result.backend} in {report['latency_ms']} ms")
    return 0
