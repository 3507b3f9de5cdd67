"""The context pool's logic on stand-in contexts (token ids only, no model), and llm.contexts=auto."""
from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from Config import LuxaConfig, load_config
from Config.schema import SatelliteRoom
from Core.errors import ConfigError
from LLM.backends.context_pool import ContextPool, Lease
from LLM.backends.gguf import LoadedModel


def context(name: str, tokens: list[int]) -> SimpleNamespace:
    """What the pool reads of a llama_cpp.Llama: its cached token ids."""
    ids = np.zeros(64, np.intc)
    ids[: len(tokens)] = tokens
    return SimpleNamespace(name=name, input_ids=ids, n_tokens=len(tokens))


SYSTEM = [1, 2, 3, 4]


async def test_a_prompt_gets_the_free_context_that_holds_its_conversation():
    kitchen = context("kitchen", SYSTEM + [10, 11, 12, 13])
    office = context("office", SYSTEM + [20, 21, 22])
    pool = ContextPool([kitchen, office])
    assert await pool.take(SYSTEM + [20, 21, 22, 23, 24]) is office
    assert await pool.take(SYSTEM + [20, 21]) is kitchen  # the only one left: no waiting while one is free
    assert pool.in_use == 2


async def test_on_a_tie_the_least_recently_used_context_is_taken():
    """A new conversation shares only the system prompt with every context: the one that spoke
    longest ago gives its cache up, the conversation that spoke last keeps its own."""
    older = context("older", SYSTEM + [10, 11, 12])
    newer = context("newer", SYSTEM + [20, 21, 22, 23, 24, 25])
    pool = ContextPool([older, newer])
    taken = [await pool.take(SYSTEM), await pool.take(SYSTEM)]
    pool.release(taken[0])  # the older conversation ends first
    pool.release(taken[1])
    assert await pool.take(SYSTEM + [30, 31]) is taken[0]
    pool.release(taken[0])  # now the other one spoke longest ago
    assert await pool.take(SYSTEM + [40]) is taken[1]


async def test_when_every_context_is_busy_generations_wait_and_are_served_in_arrival_order():
    only = context("only", SYSTEM)
    pool = ContextPool([only])
    assert await pool.take(SYSTEM) is only
    order: list[str] = []

    async def wait(name: str) -> None:
        got = await pool.take(SYSTEM)
        order.append(name)
        pool.release(got)

    first = asyncio.create_task(wait("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(wait("second"))
    await asyncio.sleep(0)
    assert not first.done() and not second.done()
    await asyncio.to_thread(pool.release, only)  # as a worker thread gives it back
    await asyncio.gather(first, second)
    assert order == ["first", "second"] and pool.in_use == 0


async def test_a_waiter_cancelled_before_its_turn_passes_the_context_on():
    only = context("only", SYSTEM)
    pool = ContextPool([only])
    await pool.take(SYSTEM)
    gone = asyncio.create_task(pool.take(SYSTEM))
    await asyncio.sleep(0)
    served = asyncio.create_task(pool.take(SYSTEM))
    await asyncio.sleep(0)
    gone.cancel()
    pool.release(only)
    assert await served is only
    with pytest.raises(asyncio.CancelledError):
        await gone
    # handed over, then cancelled before it ran: the context goes on to the next waiter
    gone = asyncio.create_task(pool.take(SYSTEM))
    await asyncio.sleep(0)
    served = asyncio.create_task(pool.take(SYSTEM))
    await asyncio.sleep(0)
    pool.release(only)
    gone.cancel()
    assert await served is only
    with pytest.raises(asyncio.CancelledError):
        await gone
    pool.release(only)
    assert pool.in_use == 0


async def test_a_lease_is_given_back_once_by_whichever_side_ends_it():
    pool = ContextPool([context("only", SYSTEM)])
    lease = Lease(pool, await pool.take())
    lease.drop()  # the consumer went away before its worker started
    assert pool.in_use == 0 and not lease.begin()  # a late worker does not use it

    lease = Lease(pool, await pool.take())
    assert lease.begin()
    lease.drop()  # the consumer gives up while the worker still generates: not given back yet
    assert pool.in_use == 1
    lease.end()
    lease.drop()
    assert pool.in_use == 0


def test_free_waits_for_every_lent_context_and_scripts_can_hold_one():
    a, b = context("a", SYSTEM), context("b", SYSTEM)
    closed: list[str] = []
    for c in (a, b):
        c.close = lambda c=c: closed.append(c.name)
    model = LoadedModel(ContextPool([a, b]), path=None, formatter=None)  # type: ignore[arg-type]
    with model.pool.hold() as held:
        freeing = threading.Thread(target=model.free)
        freeing.start()
        freeing.join(0.2)
        assert freeing.is_alive() and not closed, "freed while a context was still lent"
        assert held in (a, b)
    freeing.join(10)
    assert sorted(closed) == ["a", "b"] and model.freed


def test_answers_running_together_share_llm_threads():
    pool = ContextPool([context("a", SYSTEM), context("b", SYSTEM)])
    model = LoadedModel(pool, path=None, formatter=None, threads=2, batch_threads=2)  # type: ignore[arg-type]
    assert model.threads_now() == (2, 2)
    with pool.hold():
        assert model.threads_now() == (2, 2)
        with pool.hold():
            assert model.threads_now() == (1, 1)


def test_auto_contexts_follow_the_satellite_rooms():
    config = LuxaConfig()
    assert config.llm.contexts == "auto" and config.llm_contexts() == 1  # a desktop pays nothing
    config.satellites.rooms = [SatelliteRoom(name="kitchen", uri="tcp://kitchen:10700")]
    assert config.llm_contexts() == 2  # the room and the local loop
    config.satellites.rooms = [SatelliteRoom(name=f"room{i}", uri=f"tcp://r{i}:10700") for i in range(6)]
    assert config.llm_contexts() == 4
    config.satellites.rooms = []
    config.satellites.discovery = True
    assert config.llm_contexts() == 2
    config.llm.contexts = 1
    assert config.llm_contexts() == 1


@pytest.mark.parametrize("value", ["0", "17", "many", "1.5"])
def test_a_bad_contexts_value_is_one_clear_line(value):
    with pytest.raises(ConfigError, match="llm.contexts.*auto or a whole number from 1 to 16"):
        load_config(None, [f"llm.contexts={value}"])
