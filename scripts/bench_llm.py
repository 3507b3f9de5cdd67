#!/usr/bin/env python3
"""Benchmark the LLM stage: first-token latency and tokens/s, manager against llama-cpp-python.

Both paths run in this process on the same loaded model (the manager's own Llama instances, one
lent at a time), alternating prompt by prompt, each run starting from the same cache state (only the
system prompt cached), so that neither gets a warmer cache or a quieter CPU.
The ratio of the medians is the manager's overhead: threads, the fallback chain, speech cleaning.

    python scripts/bench_llm.py [--json OUT] [--rounds N] [--set llm.threads=1]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from Config import LuxaConfig  # noqa: E402
from bench_common import add_config_args, failed, load_pinned, percentile, write_json  # noqa: E402  (scripts/)
from Core import gpu  # noqa: E402
from Core.errors import LuxaError  # noqa: E402

PROMPTS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Give me a tip for sleeping better.",
    "What is the boiling point of water?",
    "Tell me a short joke.",
    "Why is the sky blue?",
    "What should I cook tonight?",
    "Name three planets.",
    "How do I say hello in Spanish?",
    "What time zone is London in?",
]


@dataclass
class Sample:
    first_token_s: float
    total_s: float
    tokens: int

    @property
    def tokens_per_s(self) -> float | None:
        decode = self.total_s - self.first_token_s
        return (self.tokens - 1) / decode if self.tokens > 1 and decode > 0 else None


def direct(model, config: LuxaConfig, prompt: str) -> Sample:
    """llama-cpp-python's own streaming chat completion, same messages and sampling as a turn."""
    llm = config.llm
    messages = [{"role": "system", "content": llm.system_prompt}, {"role": "user", "content": prompt}]
    with model.pool.hold() as llama:
        start, first, tokens = time.perf_counter(), None, 0
        for chunk in llama.create_chat_completion(
            messages=messages, max_tokens=llm.max_tokens, temperature=llm.temperature,
            top_p=llm.top_p, stop=list(llm.stop), stream=True,
        ):
            if chunk["choices"][0]["delta"].get("content"):
                tokens += 1
                first = first if first is not None else time.perf_counter() - start
        total = time.perf_counter() - start
    return Sample(first if first is not None else total, total, tokens)


def prime(model, config: LuxaConfig) -> None:
    """Leave only the system prompt in llama.cpp's prefix cache, as between two real turns.

    Without this the second path to run a prompt finds it wholly cached and looks 5x faster.
    """
    messages = [{"role": "system", "content": config.llm.system_prompt}, {"role": "user", "content": "Hi"}]
    for _ in model.pool.contexts:  # hold() lends the least recently used: each context in turn
        with model.pool.hold() as llama:
            llama.create_chat_completion(messages=messages, max_tokens=1)


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None}
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}


def summarise(samples: list[Sample]) -> dict:
    return {
        "first_token_ms": {k: v * 1000 for k, v in percentiles([s.first_token_s for s in samples]).items()},
        "tokens_per_s": percentiles([r for s in samples if (r := s.tokens_per_s) is not None]),
        "tokens": sum(s.tokens for s in samples),
        "runs": len(samples),
    }


async def run_bench(config: LuxaConfig, status: gpu.GpuStatus, rounds: int) -> dict:
    from LLM import EnhancedLLMManager
    from LLM.backends.gguf import GgufBackend

    manager = EnhancedLLMManager(config, status)
    await manager.start()
    try:
        backend = next((b for b in manager.backends if isinstance(b, GgufBackend) and b.loaded), None)
        if backend is None:
            raise LuxaError("bench_llm: no GGUF backend could be loaded; see `run_assistant.py doctor`")
        model = backend.loaded
        await manager.chat(PROMPTS[0], manager.new_conversation())  # warm-up, not counted
        await asyncio.to_thread(direct, model, config, PROMPTS[0])
        managed, raw = [], []
        for index, prompt in enumerate(PROMPTS * rounds):
            async def via_manager() -> None:
                result = await manager.chat(prompt, manager.new_conversation())
                managed.append(Sample(result.first_token_s or result.latency_s, result.latency_s, result.tokens))

            async def via_llama() -> None:
                raw.append(await asyncio.to_thread(direct, model, config, prompt))

            order = (via_manager, via_llama) if index % 2 == 0 else (via_llama, via_manager)
            for step in order:
                await asyncio.to_thread(prime, model, config)
                await step()
    finally:
        await manager.close()
    report = {
        "model": backend.model,
        "threads": config.llm.threads,
        "max_tokens": config.llm.max_tokens,
        "device": status.device,
        "manager": summarise(managed),
        "llama_cpp_direct": summarise(raw),
        "samples": {"manager": [asdict(s) for s in managed], "llama_cpp_direct": [asdict(s) for s in raw]},
    }
    m, d = report["manager"], report["llama_cpp_direct"]
    report["overhead"] = {
        "first_token_ratio_p50": _ratio(m["first_token_ms"]["p50"], d["first_token_ms"]["p50"]),
        "tokens_per_s_ratio_p50": _ratio(m["tokens_per_s"]["p50"], d["tokens_per_s"]["p50"]),
    }
    return report


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _print(report: dict) -> None:
    print(f"model {report['model']} on {report['device']}, {report['threads']} thread(s), "
          f"max_tokens {report['max_tokens']}, {report['manager']['runs']} prompts per path")
    print(f"{'path':<18}{'first token p50':>17}{'p95':>10}{'tokens/s p50':>15}{'p95':>9}")
    for name in ("manager", "llama_cpp_direct"):
        s = report[name]
        ft, tps = s["first_token_ms"], s["tokens_per_s"]
        print(f"{name:<18}{_fmt(ft['p50'], 'ms'):>17}{_fmt(ft['p95'], 'ms'):>10}"
              f"{_fmt(tps['p50'], ''):>15}{_fmt(tps['p95'], ''):>9}")
    o = report["overhead"]
    print(f"manager / direct: first token x{_fmt(o['first_token_ratio_p50'], '', 2)}, "
          f"tokens/s x{_fmt(o['tokens_per_s_ratio_p50'], '', 2)}")


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{(' ' + unit) if unit else ''}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_args(parser, json_help="also write the figures and every sample to this file")
    parser.add_argument("--rounds", type=int, default=1, help="times through the prompt set (default 1)")
    args = parser.parse_args(argv)
    try:
        if args.rounds < 1:
            raise LuxaError("bench_llm: --rounds must be at least 1")
        config, status = load_pinned(args.config, args.overrides)
        report = asyncio.run(run_bench(config, status, args.rounds))
    except LuxaError as err:
        return failed("bench_llm", err)
    _print(report)
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
