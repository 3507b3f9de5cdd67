"""Keep llama.cpp's KV cache useful as a conversation outgrows its history budget.

llama-cpp-python reuses only the longest common *prefix* of the cached tokens and the new
prompt. Once the history is full, every turn drops the oldest exchange right after the system
prompt, so the common prefix ends at the system prompt and the whole history (about 1000
tokens) is evaluated again on one thread: 8-9 s to the first token on 2 cores, every other turn.

The fix is llama.cpp's context shift, as its server does it: remove the dropped exchange's
cells from the KV cache and move the cells after it back by its length (RoPE positions are
re-rotated by llama.cpp). The cache then holds exactly system prompt + kept history, and only
the new question is evaluated. The plan is computed from token ids alone (no template
knowledge): the dropped span is wherever the cached tokens, skipped by some length `d` after the
common prefix, line up again with the prompt.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)

# A shift is only worth it when it saves evaluating at least this many tokens; a shorter run of
# matching tokens is as likely to be a coincidence (two replies starting "The").
MIN_SHIFT_GAIN = 16


@dataclass(frozen=True)
class CachePlan:
    """How much of the prompt the cache will serve: `prefix` tokens as they are, plus `kept`
    tokens that follow a span of `dropped` cached tokens which the shift removes."""

    prefix: int
    dropped: int = 0
    kept: int = 0

    @property
    def reused(self) -> int:
        return self.prefix + self.kept


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    differs = np.flatnonzero(a[:n] != b[:n])
    return int(differs[0]) if differs.size else n


def plan(cached: Sequence[int], prompt: Sequence[int]) -> CachePlan:
    """The best reuse of `cached` for `prompt`: the common prefix, plus a shifted run if longer."""
    old = np.asarray(cached, dtype=np.int64)
    new = np.asarray(prompt, dtype=np.int64)
    prefix = common_prefix(old, new)
    if prefix >= len(new) - 1 or prefix >= len(old) - 1:
        return CachePlan(prefix)
    best = CachePlan(prefix)
    rest = new[prefix:]
    # candidate cuts: where the cached tokens after the prefix meet the prompt's next token again
    for start in np.flatnonzero(old[prefix + 1:] == rest[0]) + prefix + 1:
        kept = common_prefix(old[start:], rest)
        if kept > best.kept:
            best = CachePlan(prefix, int(start) - prefix, kept)
    return best if best.kept >= MIN_SHIFT_GAIN else CachePlan(prefix)


def can_shift(llama: Any) -> bool:
    """Recurrent and some hybrid models cannot move KV cells; they keep plain prefix reuse."""
    import llama_cpp

    memory = getattr(llama._ctx, "memory", None)
    return memory is not None and bool(llama_cpp.llama_memory_can_shift(memory))


def apply(llama: Any, cache_plan: CachePlan) -> None:
    """Remove the dropped span from the KV cache and close the gap (llama.cpp context shift).

    Afterwards llama-cpp-python's own prefix match sees `prefix + kept` tokens in common with
    the prompt and evaluates only the rest. Runs on the generating thread, which holds this context alone.
    """
    if not cache_plan.dropped:
        return
    start, end, total = cache_plan.prefix, cache_plan.prefix + cache_plan.dropped, llama.n_tokens
    ctx = llama._ctx
    if not ctx.kv_cache_seq_rm(0, start, end):
        log.debug("llm cache: partial removal refused; the prompt is evaluated in full")
        return
    ctx.kv_cache_seq_shift(0, end, total, -cache_plan.dropped)
    ids = llama.input_ids
    ids[start:total - cache_plan.dropped] = ids[end:total].copy()
    llama.n_tokens = total - cache_plan.dropped
    log.debug("llm cache: shifted out %d tokens after a %d-token prefix, %d kept",
              cache_plan.dropped, start, cache_plan.kept)
