"""`turn -i IN.wav -o OUT.wav`: one whole voice turn from a file, with the timings of each stage.

The file goes through the same VoiceLoop as the microphone (endpointer, early STT, streaming
reply), so what is measured here is what a user gets.
"""
from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING

from Core import audio as core_audio
from Core.audio import load_audio, write_wav
from Core.errors import AudioInputError

if TYPE_CHECKING:
    from Orchestrator.assistant import Assistant
    from Orchestrator.cli import Context
    from Orchestrator.turn import FileSink, TurnResult

HELP = "one whole voice turn from a file: transcript, reply, reply audio and timings"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--input", required=True, help="the user's question (WAV, FLAC, Ogg/Opus)")
    parser.add_argument("-o", "--output", required=True, help="where to write the spoken reply (WAV)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


async def run(args: argparse.Namespace, ctx: Context) -> int:
    from Orchestrator.assistant import Assistant

    audio = load_audio(args.input)
    # Unusable audio (empty, NaN, digital silence) is named before any model loads, instead of
    # surfacing as "no speech heard" after the endpointer found nothing in it.
    reason = core_audio.problem(audio.samples, ctx.config.stt.silence_dbfs)  # load_audio gave mono float32
    if reason:
        raise AudioInputError(f"{args.input}: {reason}")
    assistant = Assistant(ctx.config, ctx.gpu)
    await assistant.start()
    try:
        result, sink = await one_turn(assistant, audio, name=args.input)
    finally:
        await assistant.close()
    write_wav(args.output, sink.audio())
    out = {"transcript": result.transcript, "language": result.language, "reply": result.reply,
           "backend": result.backends, "timings_ms": result.timings_ms}
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(f"you:  {result.transcript}\nluxa: {result.reply}\ntimings (ms): {result.timings_ms}")
    return 0


async def one_turn(assistant: Assistant, audio: core_audio.Audio, name: str = "input") -> tuple[TurnResult, FileSink]:
    """(TurnResult, FileSink) of the first question in `audio`, played at the speed of speech.

    Real-time feeding keeps the timings honest: the endpoint wait and the early STT overlap
    exactly as they do with a microphone.
    """
    from Orchestrator.audio_io import FileMicrophone
    from Orchestrator.turn import FileSink
    from Orchestrator.voice_loop import VoiceLoop

    cfg = assistant.config
    mic = FileMicrophone(audio, cfg.audio.frame_ms, cfg.vad.longest_end_silence_ms + 300)
    sink = FileSink()
    loop = VoiceLoop(assistant, mic, sink, show=lambda line: None)
    await loop.run(asyncio.Event())
    if not loop.results:
        raise AudioInputError(f"no speech heard in {name}")
    return loop.results[0], sink
