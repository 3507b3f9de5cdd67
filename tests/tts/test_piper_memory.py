"""A long sentence leaves no lasting memory behind in Piper (no onnxruntime CPU arena).

With the arena, onnxruntime kept what the longest sentence so far needed: +100 MB after a
112-character sentence, +200 MB after 225 characters, so the daemon's memory stepped up at
whichever turn first spoke a long sentence (the soak's one-off step)."""
from __future__ import annotations

import sys

import pytest

from Config import load_config
from Core.memory import anonymous_mb, release_free_heap
from tests.fakes import CPU
from TTS import UnifiedTTSManager

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RssAnon and malloc_trim are Linux's")]

LONG = ("The northern lights were seen over the lake last night and many people came out to watch them "
        "while the children ran along the shore and the dogs barked at the strange green glow in the sky")
MAX_GROWTH_MB = 30.0  # measured: +1 MB without the arena, +200 MB with it


async def test_a_long_sentence_leaves_no_memory_behind():
    tts = UnifiedTTSManager(load_config(overrides=["cache.enabled=false"], environ={}), CPU)
    await tts.start()
    try:
        await tts.synthesize("Turning on the kitchen light.", backend="piper_native")
        release_free_heap()
        before = anonymous_mb()
        spoken = await tts.synthesize(LONG, backend="piper_native")
        release_free_heap()
        after = anonymous_mb()
    finally:
        await tts.close()
    assert spoken.audio.duration_s > 8.0  # the whole sentence was spoken, in one piece
    assert before is not None and after is not None, "no RssAnon in /proc/self/status"
    grown = after - before
    assert grown < MAX_GROWTH_MB, f"a {len(LONG)}-character sentence left {grown:.1f} MB behind"
