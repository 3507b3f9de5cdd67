"""Ordered backends, each behind a circuit breaker and a per-attempt timeout.

Modelled on livekit's FallbackAdapter: a failure (exception, timeout, invalid output) passes the
request to the next backend, but a stream that has already produced output is never switched,
because the user has already heard the start of that answer.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generic, TypeVar

from Config.schema import CircuitBreakerConfig
from Core.breaker import BreakerState, CircuitBreaker
from Core.errors import AllBackendsFailed, BackendError, LuxaError
from Core.metrics import StageMetrics

B = TypeVar("B")
R = TypeVar("R")
log = logging.getLogger(__name__)


@dataclass
class ChainMember(Generic[B]):
    name: str
    backend: B
    timeout_s: float
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)


@dataclass
class ChainResult(Generic[R]):
    value: R
    backend: str
    latency_s: float
    errors: list[str] = field(default_factory=list)


class FallbackChain(Generic[B]):
    def __init__(self, stage: str, members: list[ChainMember[B]], metrics: StageMetrics | None = None):
        if not members:
            raise ValueError(f"{stage}: a fallback chain needs at least one backend")
        self.stage = stage
        self.members = members
        self.metrics = metrics or StageMetrics(stage)
        for m in members:
            self._watch(m)

    @classmethod
    def of(cls, stage: str, backends: list[tuple[str, B, float]], breakers: CircuitBreakerConfig,
           clock: Callable[[], float], metrics: StageMetrics | None = None) -> FallbackChain[B]:
        """The chain of (name, backend, timeout_s) in priority order, each behind its own breaker."""
        return cls(stage, [ChainMember(name, backend, timeout_s,
                                       CircuitBreaker(breakers.failure_threshold, breakers.cooldown_s, clock))
                           for name, backend, timeout_s in backends], metrics)

    def _watch(self, member: ChainMember[B]) -> None:
        def publish(state: BreakerState, name: str = member.name) -> None:
            self.metrics.breaker.labels(name).set(int(state))
            self.metrics.healthy.labels(name).set(1 if state is BreakerState.CLOSED else 0)

        def changed(state: BreakerState, name: str = member.name) -> None:
            publish(state)
            log.warning("%s backend %s breaker %s", self.stage, name, state.name.lower())

        member.breaker.on_change(changed)
        publish(member.breaker.state)  # the initial state is not news: gauges only, no warning

    def member(self, name: str) -> ChainMember[B]:
        for m in self.members:
            if m.name == name:
                return m
        raise BackendError(f"{self.stage}: unknown backend {name!r} (known: {', '.join(m.name for m in self.members)})")

    async def start(self, start: Callable[[B], Awaitable[None]],
                    members: list[ChainMember[B]] | None = None) -> None:
        """`start(backend)` for every member (or `members`); one that fails to load is skipped with
        its breaker open until a probe, never fatal: the chain starts on the next one."""
        for member in self.members if members is None else members:
            try:
                await start(member.backend)
            except LuxaError as err:
                log.error("%s backend %s failed to start, the chain starts on the next one: %s",
                          self.stage, member.name, err)
                member.breaker.trip()

    def _candidates(self, only: str | None, where: Callable[[B], bool] | None = None) -> list[ChainMember[B]]:
        members = [self.member(only)] if only else self.members
        return members if where is None else [m for m in members if where(m.backend)]

    async def call(
        self,
        op: Callable[[B], Awaitable[R]],
        validate: Callable[[R], str | None] | None = None,
        only: str | None = None,
        where: Callable[[B], bool] | None = None,
    ) -> ChainResult[R]:
        """Run `op` on the first healthy backend that succeeds; `validate` returns a reason to reject;
        `where` leaves out the backends that cannot take this request (not a failure of theirs)."""
        errors: list[str] = []
        for m in self._candidates(only, where):
            if not m.breaker.allow():
                errors.append(f"{m.name}: breaker open")
                continue
            start = time.perf_counter()
            try:
                async with asyncio.timeout(m.timeout_s):  # not wait_for: on 3.11 it can swallow a cancel
                    value = await op(m.backend)
                problem = validate(value) if validate else None
                if problem:
                    raise BackendError(f"invalid output: {problem}")
            except asyncio.CancelledError:
                m.breaker.release()
                raise
            except Exception as err:  # any backend failure moves on to the next backend
                errors.append(f"{m.name}: {_describe(err, m.timeout_s)}")
                self._failed(m, errors[-1])
                continue
            latency = time.perf_counter() - start
            self._succeeded(m, latency)
            return ChainResult(value, m.name, latency, errors)
        raise AllBackendsFailed(f"{self.stage}: every backend failed ({'; '.join(errors)})")

    async def stream(
        self,
        open_stream: Callable[[B], AsyncIterator[R]],
        only: str | None = None,
        errors: list[str] | None = None,
    ) -> AsyncGenerator[tuple[str, R], None]:
        """Yield (backend, item) from the first backend whose first item arrives in time."""
        errors = [] if errors is None else errors
        for m in self._candidates(only):
            if not m.breaker.allow():
                errors.append(f"{m.name}: breaker open")
                continue
            start = time.perf_counter()
            items = open_stream(m.backend)
            try:
                async with asyncio.timeout(m.timeout_s):  # in this task: a barge-in's cancel is never lost
                    first = await anext(items)
            except StopAsyncIteration:
                errors.append(f"{m.name}: produced nothing")
                self._failed(m, errors[-1])
                continue
            except asyncio.CancelledError:
                m.breaker.release()
                await _close(items)
                raise
            except Exception as err:
                errors.append(f"{m.name}: {_describe(err, m.timeout_s)}")
                self._failed(m, errors[-1])
                await _close(items)
                continue
            self.metrics.latency.labels(m.name).observe(time.perf_counter() - start)
            try:
                yield m.name, first
                async for item in items:
                    yield m.name, item
            except GeneratorExit:
                # The caller stopped taking items (an answer cut at llm.max_sentences, a listener who
                # barged in): the backend was answering, so it counts as answered. Without this a
                # breaker that let a probe through stayed half-open after every cut answer.
                self._stream_answered(m)
                await _close(items)
                raise
            except asyncio.CancelledError:
                m.breaker.release()  # cancelled while the backend was working on an item: no verdict
                await _close(items)
                raise
            except Exception as err:
                # Output already went out: record the failure but do not switch mid-answer.
                self._failed(m, f"{m.name}: failed mid-stream: {err}", fallback=False)
                raise BackendError(f"{self.stage} backend {m.name} failed mid-stream: {err}") from err
            self._stream_answered(m)
            return
        raise AllBackendsFailed(f"{self.stage}: every backend failed ({'; '.join(errors)})")

    def _failed(self, m: ChainMember[B], reason: str, fallback: bool = True) -> None:
        log.warning("%s backend failed: %s", self.stage, reason)
        m.breaker.record_failure()
        self.metrics.requests.labels(m.name, "error").inc()
        if fallback:
            self.metrics.fallbacks.labels(m.name).inc()

    def _stream_answered(self, m: ChainMember[B]) -> None:
        self.metrics.requests.labels(m.name, "ok").inc()
        m.breaker.record_success()

    def _succeeded(self, m: ChainMember[B], latency: float) -> None:
        m.breaker.record_success()
        self.metrics.latency.labels(m.name).observe(latency)
        self.metrics.requests.labels(m.name, "ok").inc()

    def health(self) -> dict[str, str]:
        return {m.name: m.breaker.state.name.lower() for m in self.members}


def _describe(err: BaseException, timeout_s: float) -> str:
    if isinstance(err, TimeoutError):
        return f"timed out after {timeout_s:g} s"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


async def _close(items: AsyncIterator) -> None:
    aclose = getattr(items, "aclose", None)
    if aclose:
        try:
            await aclose()
        except Exception:  # closing a broken stream must not hide the original failure
            log.debug("closing a failed stream raised", exc_info=True)
