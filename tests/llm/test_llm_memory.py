"""A long prompt does not grow the daemon's memory by an attention scratch (llm.flash_attn).

Without fused attention llama.cpp writes an n_batch x n_kv matrix per head into a buffer it
reserved at load; the kernel maps its pages in as prompts first get long, so a daemon stepped up
by ~100 MB at whichever turn first evaluated a long prompt (the soak's step)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from Config import load_config
from Core.memory import anonymous_mb, limit_malloc_arenas
from LLM import EnhancedLLMManager
from tests.fakes import CPU
from tests.fresh_process import measure_in_fresh_process

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="RssAnon is Linux's")]
LONG_PROMPT_TOKENS = 1200  # about what a full history budget (1024) plus the system prompt and a question make
MAX_GROWTH_MB = 23.0  # measured in fresh processes: +13.7 MB with flash attention, +33.0 MB without it


async def growth_after_long_prompt_mb(flash_attn: bool = True) -> float:
    """MB of private memory a fresh context gains by evaluating a long prompt."""
    config = load_config(environ={})
    config.llm.flash_attn = flash_attn
    limit_malloc_arenas(config.service.malloc_arenas)  # as the daemon does at start-up
    config.llm.threads = 1  # as tests/llm/conftest.py: 2 shared cores
    manager = EnhancedLLMManager(config, CPU)
    await manager.start()
    try:
        llama = manager.backends[0].loaded.pool.contexts[0]
        tokens = llama.tokenize(b" the kitchen light is on and the door is open" * 200)[:LONG_PROMPT_TOKENS]
        before = anonymous_mb()
        await asyncio.to_thread(llama.reset)
        await asyncio.to_thread(llama.eval, tokens)
        after = anonymous_mb()
    finally:
        await manager.close()
    assert before is not None and after is not None, "no RssAnon in /proc/self/status"
    return after - before


def test_a_long_prompt_maps_in_no_attention_scratch():
    grown = measure_in_fresh_process(__name__, growth_after_long_prompt_mb.__name__)
    assert grown < MAX_GROWTH_MB, f"a {LONG_PROMPT_TOKENS}-token prompt grew anonymous memory by {grown:.1f} MB"


def test_the_memory_check_sees_the_attention_scratch():
    """The control: the same prompt without flash attention must fail the check above."""
    grown = measure_in_fresh_process(__name__, growth_after_long_prompt_mb.__name__, False)
    assert grown > MAX_GROWTH_MB, f"without flash attention, only {grown:.1f} MB was mapped in"
