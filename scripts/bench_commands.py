#!/usr/bin/env python3
"""Spoken commands: intent accuracy from speech, and end of speech -> first audio of the answer.

The English lines of scripts/commands.tsv are synthesised with Piper at three speeds and three
levels, then
  - accuracy: every line at every speed and level (9 clips a line) heard by the product's STT
    chain the voice loop's way (`Orchestrator.hearing.hear`) and matched, against the expected
    intent/slots;
  - turns: one of those clips a line (a speed and level taken in turn) through the voice loop in real time
    (`turn`'s path): the first reply audio, and the intent the loop answered with.

    python scripts/bench_commands.py [--json OUT] [--set KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_common import add_config_args, failed, load_pinned, percentiles, report_header, write_json  # noqa: E402

from Core.errors import LuxaError  # noqa: E402

COMMANDS = Path(__file__).with_name("commands.tsv")
SPEEDS = (0.85, 1.0, 1.2)
LEVELS_DBFS = (-36.0, -28.0, -20.0)  # speech RMS; its peaks stand 15-20 dB higher, so louder would clip
# the home the command set talks about (devices.entities)
ENTITIES = [
    {"id": "light.kitchen", "name": "kitchen light", "area": "kitchen", "area_aliases": ["cuisine"],
     "command_topic": "luxa-test/kitchen/set", "state_topic": "luxa-test/kitchen/state"},
    {"id": "light.living_room", "name": "living room lamp", "aliases": ["lampe du salon"], "area": "living room",
     "area_aliases": ["salon"], "command_topic": "luxa-test/living_room/set"},
    {"id": "switch.coffee", "name": "coffee machine", "aliases": ["machine à café"], "area": "kitchen",
     "command_topic": "luxa-test/coffee/set"},
    {"id": "fan.bedroom", "name": "bedroom fan", "area": "bedroom", "command_topic": "luxa-test/bedroom_fan/set"},
]


def command_set(language: str | None = None) -> list[tuple[str, str, str, dict]]:
    """(language, text, intent or '-', slots) rows of commands.tsv."""
    with open(COMMANDS, encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")][1:]
    return [(lang, text, intent, json.loads(slots)) for lang, text, intent, slots in rows
            if language is None or lang == language]


def agrees(match, intent: str, slots: dict) -> bool:
    """The match is the expected intent ('-': none) with the expected slots (numbers as numbers)."""
    if intent == "-":
        return match is None
    if match is None or match.intent != intent:
        return False
    for key, want in slots.items():
        got = match.slots.get(key)
        if isinstance(want, (int, float)):
            try:
                if float(got) != float(want):
                    return False
            except (TypeError, ValueError):
                return False
        elif got != want:
            return False
    return True


def overrides(state_dir: str) -> list[str]:
    """The config the set needs: its devices, and a private state directory (the timers it sets)."""
    return [f"service.state_dir={state_dir}", f"devices.entities={json.dumps(ENTITIES)}"]


def at_level(samples: np.ndarray, level_dbfs: float):
    """A 16 kHz clip of `samples` at `level_dbfs` (speech RMS), 0.3 s of silence before."""
    from Core.audio import Audio, dbfs

    scaled = samples * np.float32(10 ** ((level_dbfs - dbfs(samples)) / 20))
    return Audio(np.concatenate([np.zeros(4800, np.float32), scaled.astype(np.float32)]), 16000)


async def say(tts, language: str, text: str, speed: float) -> np.ndarray:
    result = await tts.synthesize(text, speed=speed, language=language)
    if not result.success:
        raise LuxaError(f"bench_commands: Piper could not say {text!r}: {result.error}")
    return result.audio.to_rate(16000).samples


def in_turn(n: int) -> tuple[float, float]:
    """The (speed, level) of row `n` when each line is said one way: taken in turn."""
    return SPEEDS[n % 3], LEVELS_DBFS[(n // 3) % 3]


async def spoken(tts, rows: list[tuple[str, str, str, dict]]) -> list:
    """One clip per row: Piper at a speed and level taken in turn."""
    clips = []
    for n, (language, text, _, _) in enumerate(rows):
        speed, level = in_turn(n)
        clips.append(at_level(await say(tts, language, text, speed), level))
    return clips


async def spoken_every_way(tts, rows: list[tuple[str, str, str, dict]]) -> list[tuple[int, float, float, object]]:
    """(row index, speed, level, clip) for every row at every speed and level: 9 clips a row, so
    that one unlucky synthesis moves the figure by 0.2 %, not by 2 %."""
    clips = []
    for n, (language, text, _, _) in enumerate(rows):
        for speed in SPEEDS:
            samples = await say(tts, language, text, speed)
            clips.extend((n, speed, level, at_level(samples, level)) for level in LEVELS_DBFS)
    return clips


async def run(config, status, latency: bool) -> dict:
    from Orchestrator.assistant import Assistant
    from Orchestrator.commands.turn import one_turn
    from Orchestrator.hearing import hear

    assistant = Assistant(config, status)
    await assistant.start()
    rows = command_set("en")
    try:
        heard, one_way = [], {}
        for n, speed, level, clip in await spoken_every_way(assistant.tts, rows):
            if (speed, level) == in_turn(n):
                one_way[n] = clip  # the turns replay these clips, not new syntheses
            language, text, intent, slots = rows[n]
            transcript = await hear(assistant, clip, await assistant.stt.transcribe(clip))  # the voice loop's way
            match = assistant.intents.match(transcript.text, transcript.language)
            heard.append({"text": text, "speed": speed, "level_dbfs": level, "heard": transcript.text,
                          "language": transcript.language, "intent": intent, "got": match and match.intent,
                          "right": agrees(match, intent, slots)})
        turns = []
        if latency:
            for n, (language, text, intent, slots) in enumerate(rows):
                result, _ = await one_turn(assistant, one_way[n], name=text)
                turns.append({"text": text, "intent": result.backends.get("intent"), "wanted": intent,
                              "transcript": result.transcript, "reply": result.reply,
                              "first_audio_ms": result.timings_ms.get("first_audio")})
    finally:
        await assistant.close()
    return {"heard": heard, "turns": turns}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_args(parser)
    parser.add_argument("--quick", action="store_true", help="accuracy only, no real-time turns")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="luxa-bench-commands-") as state:
            config, status = load_pinned(args.config, overrides(state) + args.overrides)
            report = report_header(config, args.overrides)
            started = time.monotonic()
            report["result"] = result = asyncio.run(run(config, status, latency=not args.quick))
            report["seconds"] = round(time.monotonic() - started, 1)
    except LuxaError as err:
        return failed("bench_commands", err)
    right = sum(h["right"] for h in result["heard"])
    wrong = [h for h in result["heard"] if not h["right"]]
    first = [t["first_audio_ms"] for t in result["turns"] if t["intent"] and t["first_audio_ms"] is not None]
    # the loop answers a command by its intent; no intent is right only for a line that wants none
    turns_right = [t for t in result["turns"] if (t["intent"] or "-") == t["wanted"]]
    report["summary"] = {"accuracy": round(right / len(result["heard"]), 3), "of": len(result["heard"]),
                         "turn_accuracy": round(len(turns_right) / max(1, len(result["turns"])), 3),
                         "turns": len(result["turns"]), "first_audio_ms_commands": percentiles(first)}
    print(f"intent accuracy from speech: {right}/{len(result['heard'])} ({right / len(result['heard']):.1%})")
    for h in wrong:
        print(f"  {h['text']!r} ({h['speed']}x, {h['level_dbfs']:g} dBFS) heard as {h['heard']!r} ({h['language']}): "
              f"{h['got']} (wanted {h['intent']})")
    if result["turns"]:
        print(f"through the voice loop: {len(turns_right)}/{len(result['turns'])} turns answered with the wanted intent")
        for t in result["turns"]:
            if t not in turns_right:
                print(f"  {t['text']!r} heard as {t['transcript']!r}: {t['intent']} (wanted {t['wanted']})")
        print(f"end of speech -> first audio, command answers: {report['summary']['first_audio_ms_commands']} ms")
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
