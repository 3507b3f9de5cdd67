"""A long prompt does not grow the daemon's memory by an attention scratch (llm.flash_attn).

Without fused attention llama.cpp writes an n_batch x n_kv matrix per head into a buffer it
reserved at load; the kernel maps its pages in as prompts first get long, so a daemon stepped up
by ~100 MB at whichever turn first evaluated a long prompt (the soak's step)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from Config import LuxaConfig
from Core.memory import anonymous_mb
from LLM import EnhancedLLMManager
from tests.fakes import CPU

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
LONG_PROMPT_TOKENS = 1200  # about what a full history budget (1024) plus the system prompt and a question make
MAX_GROWTH_MB = 20.0  # measured: +5 MB with flash attention, +35 MB without it


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="RssAnon is Linux's")
async def test_a_long_prompt_maps_in_no_attention_scratch(llm_config: LuxaConfig):
    manager = EnhancedLLMManager(llm_config.model_copy(deep=True), CPU)  # a fresh context: nothing long evaluated yet
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
    grown = after - before
    assert grown < MAX_GROWTH_MB, f"a {LONG_PROMPT_TOKENS}-token prompt grew anonymous memory by {grown:.1f} MB"
