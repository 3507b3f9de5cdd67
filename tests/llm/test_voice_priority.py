"""The voice loop comes first on the real model: an API answer already generating steps aside at
its next token while a voice turn makes its reply, then goes on from where it stopped."""
from __future__ import annotations

import asyncio
import time

import pytest

from Core.priority import VOICE, voice_work
from LLM import EnhancedLLMManager, GenerationOptions

pytestmark = pytest.mark.integration
STORY = "Tell me a long story about a dragon who lives in a castle."
API = GenerationOptions(max_tokens=96, max_sentences=0)  # the OpenAI route's: read, not heard


async def api_answer(manager: EnhancedLLMManager, times: list[float], pieces: list[str] | None = None) -> str:
    answer = manager.stream(STORY, manager.new_conversation(), "en", API)
    pieces = [] if pieces is None else pieces
    async for piece in answer:
        pieces.append(piece)
        times.append(time.perf_counter())
    return "".join(pieces)


async def voice_turn(manager: EnhancedLLMManager) -> tuple[float, float, str]:
    with VOICE.running():
        started = time.perf_counter()
        reply = await manager.chat("What is the capital of France?", manager.new_conversation(), "en")
        return started, time.perf_counter(), reply.reply


async def test_an_api_answer_steps_aside_for_a_voice_turn_and_goes_on(real_manager):
    alone_times: list[float] = []
    alone = await api_answer(real_manager, alone_times)
    assert len(alone_times) > 20, alone  # long enough to be caught mid-answer

    times: list[float] = []
    pieces: list[str] = []
    api = asyncio.create_task(api_answer(real_manager, times, pieces))
    while len(times) < 5:
        await asyncio.sleep(0.005)
    with voice_work():
        voice = asyncio.create_task(voice_turn(real_manager))
    started, finished, reply = await voice
    both = await api

    assert "paris" in reply.lower()
    during = [t for t in times if started < t < finished]
    assert len(during) <= 1, f"the API answer kept generating during the voice turn ({len(during)} pieces)"
    assert any(t > finished for t in times), "the API answer went on after the voice turn"
    # it went on from where it stopped: what was said before stays the start, nothing is said twice,
    # and it runs about as long as alone (greedy decoding may take another turn after the seam: the
    # answer so far is re-tokenised from its text)
    before = "".join(p for p, t in zip(pieces, times) if t <= started)
    assert both.startswith(before) and len(before) > 0
    opening = " ".join(alone.split()[:4])  # the story's first words (greedy: the same in both answers)
    assert both.count(opening) == alone.count(opening) == 1, both
    assert len(both) > 0.6 * len(alone), (alone, both)


async def test_inside_a_voice_turn_nothing_waits(real_manager):
    with VOICE.running():
        with voice_work():
            reply = await asyncio.wait_for(asyncio.ensure_future(
                real_manager.chat("Say hello.", real_manager.new_conversation(), "en")), 30)
    assert reply.reply
