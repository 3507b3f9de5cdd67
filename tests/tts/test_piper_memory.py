"""A long sentence leaves no lasting memory behind in Piper (no onnxruntime CPU arena).

With the arena, onnxruntime kept what the longest sentence so far needed: +100 MB after a
112-character sentence, +200 MB after 225 characters, so the daemon's memory stepped up at
whichever turn first spoke a long sentence (the soak's one-off step)."""
from __future__ import annotations

import functools
import sys

import pytest

import TTS.piper_native
from Config import load_config
from Core.memory import anonymous_mb, limit_malloc_arenas, release_free_heap
from tests.fakes import CPU
from tests.fresh_process import measure_in_fresh_process
from TTS import UnifiedTTSManager

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RssAnon and malloc_trim are Linux's")]

LONG = ("The northern lights were seen over the lake last night and many people came out to watch them "
        "while the children ran along the shore and the dogs barked at the strange green glow in the sky")
# The least of three: without the arena what a sentence leaves is heap that happens to be in
# use at that moment (0-49 MB, measured in fresh processes), not kept; the arena keeps 153-176 MB
# after every one.
SENTENCES = 3
MAX_GROWTH_MB = 60.0


async def least_growth_after_long_sentences_mb(arena: bool = False) -> float:
    """The least private memory (MB) left behind after each of a few long sentences, Piper warmed up
    by a short one first. `arena=True` loads the voice with onnxruntime's arena: the control."""
    if arena:
        TTS.piper_native.load_cpu_voice = functools.partial(TTS.piper_native.load_cpu_voice, arena=True)
    config = load_config(overrides=["cache.enabled=false"], environ={})
    limit_malloc_arenas(config.service.malloc_arenas)  # as the daemon does at start-up
    tts = UnifiedTTSManager(config, CPU)
    await tts.start()
    grown = []
    try:
        await tts.synthesize("Turning on the kitchen light.", backend="piper_native")
        release_free_heap()
        before = anonymous_mb()
        assert before is not None, "no RssAnon in /proc/self/status"
        for _ in range(SENTENCES):
            spoken = await tts.synthesize(LONG, backend="piper_native")
            assert spoken.audio.duration_s > 8.0  # the whole sentence was spoken, in one piece
            release_free_heap()
            grown.append((anonymous_mb() or 0.0) - before)
    finally:
        await tts.close()
    return min(grown)


def test_a_long_sentence_leaves_no_memory_behind():
    grown = measure_in_fresh_process(__name__, least_growth_after_long_sentences_mb.__name__)
    assert grown < MAX_GROWTH_MB, f"a {len(LONG)}-character sentence left {grown:.1f} MB behind"


def test_the_memory_check_sees_onnxruntimes_arena():
    """The control: the same measure with the arena on must fail the check above."""
    grown = measure_in_fresh_process(__name__, least_growth_after_long_sentences_mb.__name__, True)
    assert grown > MAX_GROWTH_MB, f"with the arena on, only {grown:.1f} MB was left behind"
