"""FallbackChain: skip open breakers, move on after a timeout or an invalid result, never
switch a stream once it produced output; the stage's metrics move with every decision."""
from __future__ import annotations

import asyncio
import itertools
from typing import AsyncIterator

import pytest

from Core.breaker import BreakerState, CircuitBreaker
from Core.errors import AllBackendsFailed, BackendError
from Core.fallback import ChainMember, FallbackChain
from Core.metrics import REGISTRY, StageMetrics

_stage_ids = itertools.count()


class FakeBackend:
    """Answers `reply` after `delay_s`, or raises `error`; streams `items` (failing after `fail_after`)."""

    def __init__(self, reply: str = "ok", delay_s: float = 0.0, error: Exception | None = None,
                 items: tuple[str, ...] = ("a", "b", "c"), fail_after: int | None = None):
        self.reply, self.delay_s, self.error = reply, delay_s, error
        self.items, self.fail_after = items, fail_after
        self.calls = 0

    async def answer(self) -> str:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.error:
            raise self.error
        return self.reply

    async def stream(self) -> AsyncIterator[str]:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        for i, item in enumerate(self.items):
            if self.error and (self.fail_after is None or i == self.fail_after):
                raise self.error
            yield item


def _chain(*backends: FakeBackend, timeout_s: float = 1.0, threshold: int = 3):
    stage = f"unittest{next(_stage_ids)}"
    members = [ChainMember(f"b{i}", b, timeout_s, CircuitBreaker(threshold, 60.0)) for i, b in enumerate(backends)]
    return FallbackChain(stage, members, StageMetrics(stage)), stage


def _metric(stage: str, what: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"luxa_{stage}_{what}", labels) or 0.0


async def _collect(chain: FallbackChain, errors: list[str] | None = None) -> list[tuple[str, str]]:
    return [pair async for pair in chain.stream(lambda b: b.stream(), errors=errors)]


async def test_first_healthy_backend_answers():
    first, second = FakeBackend("one"), FakeBackend("two")
    chain, stage = _chain(first, second)
    result = await chain.call(lambda b: b.answer())
    assert (result.value, result.backend, result.errors) == ("one", "b0", [])
    assert second.calls == 0
    assert _metric(stage, "requests_total", backend="b0", outcome="ok") == 1


async def test_exception_passes_the_request_to_the_next_backend():
    chain, stage = _chain(FakeBackend(error=RuntimeError("engine crashed")), FakeBackend("two"))
    result = await chain.call(lambda b: b.answer())
    assert result.backend == "b1" and result.value == "two"
    assert "engine crashed" in result.errors[0]
    assert _metric(stage, "fallback_total", backend="b0") == 1
    assert _metric(stage, "requests_total", backend="b0", outcome="error") == 1


async def test_timeout_passes_the_request_to_the_next_backend():
    slow = FakeBackend("late", delay_s=5.0)
    chain, stage = _chain(slow, FakeBackend("fast"), timeout_s=0.05)
    result = await chain.call(lambda b: b.answer())
    assert result.value == "fast"
    assert "timed out" in result.errors[0]
    assert _metric(stage, "fallback_total", backend="b0") == 1


async def test_invalid_output_is_rejected_and_the_next_backend_answers():
    chain, _ = _chain(FakeBackend(""), FakeBackend("words"))
    result = await chain.call(lambda b: b.answer(), validate=lambda v: None if v else "empty text")
    assert result.value == "words"
    assert "empty text" in result.errors[0]


async def test_open_breaker_is_skipped_without_calling_the_backend():
    broken = FakeBackend(error=RuntimeError("down"))
    chain, stage = _chain(broken, FakeBackend("two"), threshold=2)
    for _ in range(2):
        await chain.call(lambda b: b.answer())
    assert chain.health()["b0"] == "open"
    assert _metric(stage, "breaker_state", backend="b0") == int(BreakerState.OPEN)
    assert _metric(stage, "backend_healthy", backend="b0") == 0
    calls_before = broken.calls
    result = await chain.call(lambda b: b.answer())
    assert broken.calls == calls_before
    assert result.errors == ["b0: breaker open"]


async def test_every_backend_failing_raises_all_backends_failed_with_each_reason():
    chain, _ = _chain(FakeBackend(error=RuntimeError("first")), FakeBackend(error=ValueError("second")))
    with pytest.raises(AllBackendsFailed) as caught:
        await chain.call(lambda b: b.answer())
    assert "first" in str(caught.value) and "second" in str(caught.value)


async def test_only_restricts_the_call_to_one_named_backend():
    chain, _ = _chain(FakeBackend("one"), FakeBackend("two"))
    assert (await chain.call(lambda b: b.answer(), only="b1")).value == "two"
    with pytest.raises(BackendError, match="unknown backend"):
        await chain.call(lambda b: b.answer(), only="nope")


async def test_stream_yields_every_item_from_the_first_backend():
    chain, stage = _chain(FakeBackend(items=("x", "y")), FakeBackend())
    assert await _collect(chain) == [("b0", "x"), ("b0", "y")]
    assert _metric(stage, "requests_total", backend="b0", outcome="ok") == 1


async def test_stream_falls_back_when_the_first_item_fails():
    chain, stage = _chain(FakeBackend(error=RuntimeError("no start")), FakeBackend(items=("p", "q")))
    errors: list[str] = []
    assert await _collect(chain, errors) == [("b1", "p"), ("b1", "q")]
    assert "no start" in errors[0]
    assert _metric(stage, "fallback_total", backend="b0") == 1


async def test_stream_falls_back_when_the_first_item_is_late():
    chain, _ = _chain(FakeBackend(delay_s=5.0), FakeBackend(items=("quick",)), timeout_s=0.05)
    assert await _collect(chain) == [("b1", "quick")]


async def test_stream_that_produces_nothing_falls_back():
    chain, _ = _chain(FakeBackend(items=()), FakeBackend(items=("z",)))
    assert await _collect(chain) == [("b1", "z")]


async def test_stream_never_switches_backend_after_the_first_item():
    second = FakeBackend(items=("never",))
    chain, stage = _chain(FakeBackend(items=("a", "b", "c"), error=RuntimeError("mid"), fail_after=1), second)
    seen = []
    with pytest.raises(BackendError, match="mid-stream"):
        async for pair in chain.stream(lambda b: b.stream()):
            seen.append(pair)
    assert seen == [("b0", "a")]
    assert second.calls == 0
    assert _metric(stage, "requests_total", backend="b0", outcome="error") == 1
    assert _metric(stage, "fallback_total", backend="b0") == 0


async def test_stream_with_every_backend_failing_raises_all_backends_failed():
    chain, _ = _chain(FakeBackend(error=RuntimeError("a")), FakeBackend(error=RuntimeError("b")))
    with pytest.raises(AllBackendsFailed):
        await _collect(chain)


async def test_closing_a_stream_early_counts_as_an_answer_and_closes_the_half_open_breaker():
    now = [0.0]
    breaker = CircuitBreaker(1, 60.0, clock=lambda: now[0])
    chain = FallbackChain("unittest_probe", [ChainMember("b0", FakeBackend(items=("a", "b", "c")), 1.0, breaker)])
    breaker.record_failure()
    now[0] = 60.0  # past the cool-down: the next call is the probe
    stream = chain.stream(lambda b: b.stream())
    assert await anext(stream) == ("b0", "a")
    await stream.aclose()  # the answer was cut (enough sentences, or the listener barged in)
    assert breaker.state is BreakerState.CLOSED
    assert _metric("unittest_probe", "requests_total", backend="b0", outcome="ok") == 1


async def test_cancelling_a_stream_while_the_backend_works_gives_the_probe_back_without_a_verdict():
    now = [0.0]
    breaker = CircuitBreaker(1, 60.0, clock=lambda: now[0])
    started = asyncio.Event()

    class Slow:
        async def stream(self):
            yield "a"
            started.set()
            await asyncio.sleep(60)
            yield "b"

    chain = FallbackChain("unittest_probe_cancel", [ChainMember("b0", Slow(), 1.0, breaker)])
    breaker.record_failure()
    now[0] = 60.0

    async def consume() -> None:
        async for _ in chain.stream(lambda b: b.stream()):
            pass

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert breaker.state is BreakerState.HALF_OPEN and breaker.allow(), "the probe slot was not given back"


async def test_chain_needs_at_least_one_backend():
    with pytest.raises(ValueError):
        FallbackChain("empty", [])


async def test_a_new_chain_publishes_closed_breakers_without_warning(caplog):
    with caplog.at_level("WARNING", logger="Core.fallback"):
        chain, stage = _chain(FakeBackend(), FakeBackend())
    assert _metric(stage, "backend_healthy", backend="b1") == 1
    assert _metric(stage, "breaker_state", backend="b1") == int(BreakerState.CLOSED)
    assert caplog.records == []


async def test_a_cancel_that_lands_as_the_first_item_arrives_is_not_lost():
    """A barge-in's cancel in the same loop step as the backend's first item. asyncio.wait_for ran
    anext() in a task of its own and, on Python 3.11, returned the item and dropped the cancel:
    the interrupted answer went on being spoken."""
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiting = asyncio.Event()
    got: list[str] = []

    class Gated:
        async def stream(self):
            waiting.set()
            await gate
            yield "first"
            yield "second"

    chain = FallbackChain("unittest_cancel_race", [ChainMember("b0", Gated(), 1.0, CircuitBreaker(1, 60.0))])

    async def consume() -> None:
        async for _, item in chain.stream(lambda b: b.stream()):
            got.append(item)

    task = asyncio.create_task(consume())
    await waiting.wait()
    gate.set_result(None)  # the first item is ready in this same step...
    task.cancel()  # ...and the listener barges in
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled(), f"the cancel was lost: the stream went on with {got}"
    assert got == []
