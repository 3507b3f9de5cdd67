#!/usr/bin/env python3
"""Buffers sized by the longest input so far: what leaving them out costs, and what it saves.

Two engines reserved memory for the longest input they had seen and kept it, so the daemon's
private memory stepped up by ~100 MB at whichever turn first had a long sentence or prompt:

- Piper (onnxruntime): the CPU memory arena, now off (TTS/piper_native.load_cpu_voice);
- llama.cpp: the attention scratch of a prompt batch (n_batch x n_kv per head), which flash
  attention does not need (llm.flash_attn, now on).

For each, both variants in this one process, rounds alternating between them: the time of a
short and a long sentence (Piper) or of a short and a long prompt and a first token (llama.cpp),
p50/p95, and the anonymous memory (RssAnon, after glibc's malloc_trim, as the daemon does after
each turn) that the long input left behind.

    python scripts/bench_buffers.py [--rounds N] [--json OUT] [--set KEY=VALUE]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_common import (  # noqa: E402  (scripts/)
    add_config_args,
    describe_machine,
    failed,
    load_average,
    load_pinned,
    percentiles,
    report_header,
    write_json,
)
from bench_llm import PROMPTS  # noqa: E402

from Core.errors import LuxaError  # noqa: E402
from Core.memory import anonymous_mb, release_free_heap  # noqa: E402

SHORT_SENTENCE = "Turning on the kitchen light."
LONG_SENTENCE = ("The northern lights were seen over the lake last night and many people came out to watch them "
                 "while the children ran along the shore and the dogs barked at the strange green glow in the sky")
SHORT_PROMPT_TOKENS, LONG_PROMPT_TOKENS = 300, 1200  # a fresh conversation; a history at its budget


def trimmed_anonymous_mb() -> float:
    """This process's private memory once freed heap pages are given back (the daemon trims after each turn)."""
    release_free_heap()
    return anonymous_mb() or float("nan")  # nan: not Linux


def timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return 1000 * (time.perf_counter() - started)


def bench_piper(config, rounds: int) -> dict:
    from Core import models
    from TTS.piper_native import load_cpu_voice

    path = models.resolve(config.tts.voices["en"].piper, "piper", config.models.dir).path
    variants = {"arena off (now)": False, "arena on (before)": True}
    voices, rows = {}, {name: {"short_ms": [], "long_ms": [], "held_mb": None} for name in variants}
    for name, arena in variants.items():  # the variant that keeps nothing first: its figure is not muddied
        voices[name] = voice = load_cpu_voice(path, config.tts.threads, arena=arena)
        speak(voice, SHORT_SENTENCE)
        before = trimmed_anonymous_mb()
        speak(voice, LONG_SENTENCE)
        rows[name]["held_mb"] = round(trimmed_anonymous_mb() - before, 1)
    for _ in range(rounds):
        for name, voice in voices.items():
            rows[name]["short_ms"].append(timed(lambda: speak(voice, SHORT_SENTENCE)))
            rows[name]["long_ms"].append(timed(lambda: speak(voice, LONG_SENTENCE)))
    return {name: {"short_ms": percentiles(r["short_ms"]), "long_ms": percentiles(r["long_ms"]),
                   "held_mb": r["held_mb"]} for name, r in rows.items()}


def speak(voice, text: str) -> None:
    for _ in voice.synthesize(text):
        pass


async def bench_llama(config, status, rounds: int) -> dict:
    from LLM import EnhancedLLMManager

    variants = {"flash attention (now)": True, "no flash attention (before)": False}
    managers, prompts, rows = {}, {}, {name: {"short_ms": [], "long_ms": [], "first_token_ms": [], "held_mb": None}
                          for name in variants}
    try:
        for name, flash in variants.items():
            variant = config.model_copy(deep=True)
            variant.llm.flash_attn, variant.llm.contexts = flash, 1
            managers[name] = manager = EnhancedLLMManager(variant, status)
            await manager.start()
            llama = manager.backends[0].loaded.pool.contexts[0]
            prompts[name] = tokens = llama.tokenize(b" the kitchen light is on and the door is open" * 200)
            before = trimmed_anonymous_mb()
            await asyncio.to_thread(evaluate, llama, tokens[:LONG_PROMPT_TOKENS])
            rows[name]["held_mb"] = round(trimmed_anonymous_mb() - before, 1)
        for round_ in range(rounds):
            for name, manager in managers.items():
                llama = manager.backends[0].loaded.pool.contexts[0]
                for key, count in (("short_ms", SHORT_PROMPT_TOKENS), ("long_ms", LONG_PROMPT_TOKENS)):
                    prompt = prompts[name][:count]
                    rows[name][key].append(await asyncio.to_thread(timed, lambda: evaluate(llama, prompt)))
                result = await manager.chat(PROMPTS[round_ % len(PROMPTS)], manager.new_conversation(), "en")
                if result.first_token_s:
                    rows[name]["first_token_ms"].append(1000 * result.first_token_s)
    finally:
        for manager in managers.values():
            await manager.close()
    return {name: {key: percentiles(value) if isinstance(value, list) else value for key, value in r.items()}
            for name, r in rows.items()}


def evaluate(llama, tokens: list[int]) -> None:
    llama.reset()
    llama.eval(tokens)


def _pair(p: dict) -> str:
    return "n/a" if p["p50"] is None else f"{p['p50']:.0f} / {p['p95']:.0f}"


def _print(report: dict) -> None:
    print(describe_machine(report["machine"]))
    print(f"Piper, {report['settings']['rounds']} rounds{'':14s}{'short sentence ms':>20}{'long sentence ms':>20}"
          f"{'long leaves MB':>16}")
    for name, r in report["piper"].items():
        print(f"  {name:32s}{_pair(r['short_ms']):>20}{_pair(r['long_ms']):>20}{r['held_mb']:>16.1f}")
    print(f"llama.cpp{'':25s}{f'{SHORT_PROMPT_TOKENS} tokens ms':>20}{f'{LONG_PROMPT_TOKENS} tokens ms':>20}"
          f"{'first token ms':>16}{'long leaves MB':>16}")
    for name, r in report["llama"].items():
        print(f"  {name:32s}{_pair(r['short_ms']):>20}{_pair(r['long_ms']):>20}{_pair(r['first_token_ms']):>16}"
              f"{r['held_mb']:>16.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_args(parser, json_help="also write the figures to this file")
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds per variant (default 8)")
    args = parser.parse_args(argv)
    try:
        if args.rounds < 1:
            raise LuxaError("bench_buffers: --rounds must be at least 1")
        config, status = load_pinned(args.config, ["llm.temperature=0", *args.overrides])
        report = report_header(config, args.overrides, settings={"rounds": args.rounds})
        report["piper"] = bench_piper(config, args.rounds)
        report["llama"] = asyncio.run(bench_llama(config, status, args.rounds))
    except LuxaError as err:
        return failed("bench_buffers", err)
    report["machine"]["load_average_end"] = load_average()
    _print(report)
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
