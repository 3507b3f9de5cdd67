#!/usr/bin/env python3
"""LLM rooms benchmark: two rooms asking at once against one room alone, by llm.contexts and llm.threads.

The LLM part of `bench satellites`, without audio: two conversations (kitchen, office) kept for the
whole run, as two satellite rooms keep theirs. Each prompt is asked by the kitchen alone, then by
both rooms at the same moment (different prompts), through the manager as a room's turn is. For
each variant, in this one process and one after the other on the same machine:

- 1 context (before llm.contexts: one Llama per model, answers queue for it);
- 2 contexts, llm.threads=1 (one thread per answer: the 2 cores, no spinning);
- 2 contexts, llm.threads=2 shared (2 threads for an answer alone, 1 each for two at once);
- 2 contexts, 2 threads each (what not sharing would cost: 4 spinning threads on 2 cores).

    python scripts/bench_llm_rooms.py [--rounds N] [--json OUT] [--set KEY=VALUE]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

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

# (name, llm.contexts, llm.threads, whether answers running together share llm.threads)
VARIANTS = [
    ("1 context, 1 thread", 1, 1, True),
    ("2 contexts, 1 thread", 2, 1, True),
    ("2 contexts, 2 threads shared", 2, 2, True),
    ("2 contexts, 2 threads each", 2, 2, False),
]


async def run_variant(config, status, contexts: int, threads: int, share: bool, rounds: int) -> dict:
    from LLM import EnhancedLLMManager
    from LLM.backends.gguf import LoadedModel

    config = config.model_copy(deep=True)
    config.llm.contexts, config.llm.threads, config.llm.batch_threads = contexts, threads, threads
    shared = LoadedModel.threads_now
    if not share:  # the counterfactual: every answer keeps llm.threads whatever runs beside it
        LoadedModel.threads_now = lambda self: (self.threads, self.batch_threads)  # type: ignore[method-assign]
    manager = EnhancedLLMManager(config, status)
    rows: dict[str, list[dict]] = {"one room": [], "two rooms": []}
    before = _memory()
    try:
        await manager.start()
        loaded = {k: round(v - before[k], 1) for k, v in _memory().items()}  # what the contexts cost
        rooms = {"kitchen": manager.new_conversation(), "office": manager.new_conversation()}
        await manager.chat(PROMPTS[0], manager.new_conversation())  # warm-up, not counted

        async def ask(room: str, prompt: str) -> dict:
            started = time.perf_counter()
            result = await manager.chat(prompt, rooms[room], "en")
            return {"room": room, "prompt": prompt, "first_token_s": result.first_token_s,
                    "answer_s": time.perf_counter() - started, "tokens": result.tokens}

        half = len(PROMPTS) // 2
        for _ in range(rounds):
            for index, prompt in enumerate(PROMPTS):
                rows["one room"].append(await ask("kitchen", prompt))
                other = PROMPTS[(index + half) % len(PROMPTS)]
                rows["two rooms"] += await asyncio.gather(ask("kitchen", prompt), ask("office", other))
    finally:
        await manager.close()
        LoadedModel.threads_now = shared  # type: ignore[method-assign]
    return {"memory_mb": loaded, **{mode: {"first_token_ms": percentiles([1000 * r["first_token_s"] for r in got if r["first_token_s"]]),
                   "answer_ms": percentiles([1000 * r["answer_s"] for r in got]),
                   "tokens": sum(r["tokens"] for r in got), "turns": got}
            for mode, got in rows.items()}}


def _memory() -> dict[str, float]:
    """This process's resident memory (MB): rss counts the mmapped weights once per context that maps
    them; pss shares them out (what the machine really gives; Linux only, else rss)."""
    import psutil

    info = psutil.Process().memory_full_info()
    return {"rss": info.rss / 2**20, "pss": getattr(info, "pss", info.rss) / 2**20}


def _print(report: dict) -> None:
    print(describe_machine(report["machine"]))
    print(f"{'':32s}{'one room first token':>22}{'two rooms first token':>23}{'p95 x':>7}"
          f"{'two rooms whole answer':>24}{'loaded MB':>12}")
    print(f"{'':32s}{'p50 / p95 ms':>22}{'p50 / p95 ms':>23}{'':>7}{'p50 / p95 ms':>24}{'rss / pss':>12}")
    for name, result in report["variants"].items():
        one, two = result["one room"]["first_token_ms"], result["two rooms"]["first_token_ms"]
        whole = result["two rooms"]["answer_ms"]
        ratio = two["p95"] / one["p95"] if one["p95"] and two["p95"] else None
        print(f"{name:32s}{_pair(one):>22}{_pair(two):>23}{'n/a' if ratio is None else f'{ratio:.2f}':>7}"
              f"{_pair(whole):>24}{_memory_pair(result['memory_mb']):>12}")


def _memory_pair(m: dict) -> str:
    return f"{m['rss']:.0f} / {m['pss']:.0f}"


def _pair(p: dict) -> str:
    return "n/a" if p["p50"] is None else f"{p['p50']:.0f} / {p['p95']:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_args(parser, json_help="also write the figures and every turn to this file")
    parser.add_argument("--rounds", type=int, default=1, help="times through the prompt set (default 1)")
    parser.add_argument("--quick", action="store_true", help="the first two variants only")
    args = parser.parse_args(argv)
    try:
        if args.rounds < 1:
            raise LuxaError("bench_llm_rooms: --rounds must be at least 1")
        config, status = load_pinned(args.config, ["llm.temperature=0", *args.overrides])
        report = report_header(config, args.overrides, settings={"rounds": args.rounds})
        report["variants"] = {}
        for name, contexts, threads, share in VARIANTS[:2] if args.quick else VARIANTS:
            print(f"bench_llm_rooms: {name} ...", file=sys.stderr, flush=True)
            report["variants"][name] = asyncio.run(run_variant(config, status, contexts, threads, share, args.rounds))
    except LuxaError as err:
        return failed("bench_llm_rooms", err)
    report["machine"]["load_average_end"] = load_average()
    _print(report)
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
