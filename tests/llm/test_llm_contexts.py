"""Two llama.cpp contexts of the real default model (llm.contexts=2, as with one satellite room):
two conversations generate side by side, each keeps its own cache, and free() waits for both."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest

from Config import LuxaConfig
from Core.metrics import REGISTRY
from Core.priority import VOICE, voice_work
from LLM import EnhancedLLMManager, GenerationOptions
from LLM.backends.base import GenerationRequest, GenerationStats
from LLM.backends.gguf import GgufBackend
from tests.fakes import CPU

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
STORY = "Write a very long story about a dragon and a knight."
LONG = GenerationOptions(max_tokens=48, max_sentences=0)  # long enough to be caught while generating


@pytest.fixture(scope="module")
def two_contexts(llm_config: LuxaConfig) -> LuxaConfig:
    config = llm_config.model_copy(deep=True)
    config.llm.contexts = 2
    return config


@pytest.fixture(scope="module")
async def manager(two_contexts: LuxaConfig) -> AsyncIterator[EnhancedLLMManager]:
    manager = EnhancedLLMManager(two_contexts, CPU)
    await manager.start()
    assert len(manager.backends[0].loaded.pool.contexts) == 2, manager.health()
    yield manager
    await manager.close()


def evaluated_tokens() -> float:
    return REGISTRY.get_sample_value("luxa_llm_tokens_total", {"backend": "primary", "direction": "evaluated"}) or 0.0


async def test_start_primes_every_context_with_the_system_prompt(manager, two_contexts):
    system = two_contexts.llm.system_prompt
    for llama in manager.backends[0].loaded.pool.contexts:
        assert system in llama.detokenize(list(llama.input_ids[: llama.n_tokens])).decode("utf-8", "replace")


async def test_two_conversations_generate_side_by_side(manager):
    """Room B's first words come while room A is still answering (with one context B would wait for
    A's whole answer): both first pieces are logged before either answer ends."""
    events: list[tuple[str, str]] = []
    model = manager.backends[0].loaded
    busy: list[int] = []

    async def room(name: str) -> str:
        pieces = []
        async for piece in manager.stream(STORY, manager.new_conversation(), "en", LONG):
            if not pieces:
                events.append(("first", name))
                busy.append(model.busy)
            pieces.append(piece)
        events.append(("done", name))
        return "".join(pieces)

    a, b = await asyncio.gather(room("kitchen"), room("office"))
    assert a and b
    firsts = [i for i, (kind, _) in enumerate(events) if kind == "first"]
    dones = [i for i, (kind, _) in enumerate(events) if kind == "done"]
    assert max(firsts) < min(dones), events
    assert 2 in busy, busy  # both contexts were generating at once
    assert model.busy == 0


async def test_each_conversation_keeps_its_context_and_its_cache(manager):
    """Kitchen, office, office again, kitchen again: each second turn finds its own history cached
    (with one context, or a least-recently-used pick, the kitchen's would have been evaluated cold)."""
    kitchen, office = manager.new_conversation(), manager.new_conversation()
    await manager.chat("Tell me a fun fact about cats.", kitchen, "en", LONG)
    await manager.chat("How do I boil an egg?", office, "en", LONG)
    before = evaluated_tokens()
    await manager.chat("Why is the sky blue?", office, "en", LONG)
    office_second = evaluated_tokens() - before
    kitchen_history = manager.count_tokens(" ".join(t.content for t in kitchen.turns))
    before = evaluated_tokens()
    reply = await manager.chat("Give me a tip for sleeping better.", kitchen)
    kitchen_second = evaluated_tokens() - before
    assert reply.reply
    assert kitchen_second < kitchen_history / 2, (kitchen_second, kitchen_history)
    assert office_second < kitchen_history / 2, (office_second, kitchen_history)


async def test_a_room_answer_still_steps_aside_for_a_voice_turn(manager):
    """A free second context does not change who comes first: the local voice turn's answer is made
    while the room's answer waits, and the room's answer then goes on."""
    events: list[str] = []
    caught = asyncio.Event()

    async def room() -> str:
        pieces: list[str] = []
        async for piece in manager.stream(STORY, manager.new_conversation(), "en", LONG):
            pieces.append(piece)
            events.append("room" if not VOICE.busy else "room during voice")
            if len(pieces) == 3:
                caught.set()
        return "".join(pieces)

    async def voice() -> str:
        with VOICE.running():
            events.append("voice starts")
            reply = await manager.chat("What is the capital of France?", manager.new_conversation(), "en")
            events.append("voice ends")
            return reply.reply

    story = asyncio.create_task(room())
    await caught.wait()
    with voice_work():
        answer = await asyncio.create_task(voice())
    told = await story
    assert "paris" in answer.lower() and told
    assert events.count("room during voice") <= 1, events  # at most the token already being made
    assert events.index("voice ends") < len(events) - 1 and events[-1] == "room", events


async def test_a_hot_swap_loads_every_context_and_frees_the_old_ones(manager):
    backend = manager.backends[0]
    old = backend.loaded
    await manager.swap("primary", "smollm2-135m")
    assert old.freed and backend.loaded is not old and len(backend.loaded.pool.contexts) == 2
    answer = await manager.chat("What is the capital of France?", manager.new_conversation())
    assert "paris" in answer.reply.lower()


async def test_free_waits_for_both_generations(two_contexts):
    spec = two_contexts.llm.backends["primary"]
    backend = GgufBackend("freed", spec, two_contexts.llm, two_contexts.models.dir, CPU, contexts=2)
    await backend.start()
    model = backend.loaded
    assert model is not None
    llm = two_contexts.llm
    events: list[str] = []

    def request(text: str) -> GenerationRequest:
        return GenerationRequest([{"role": "user", "content": text}], 32, 0.0, 1.0, list(llm.stop))

    a = backend.stream(request(STORY), GenerationStats())
    b = backend.stream(request("Tell me a long story about a castle."), GenerationStats())
    await anext(a)  # both generations started (a's worker may already have finished its tokens and
    await anext(b)  # given its context back: `busy` counts contexts, free() waits for the streams)

    def free() -> None:
        model.free()
        events.append("freed")

    freeing = asyncio.create_task(asyncio.to_thread(free))
    await a.aclose()
    events.append("a closed")
    async for _ in b:
        events.append("b token")
    await freeing
    # freed only after a was closed and b's last token was taken; b's end itself races the freeing
    # thread (b checks in as it ends, so "freed" may come before the loop reads that end)
    assert "a closed" in events and events[-1] == "freed" and model.freed
    assert events.index("a closed") < events.index("freed")
