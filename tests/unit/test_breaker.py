"""CircuitBreaker: closed -> open after N failures -> half-open after the cool-down -> one probe."""
from __future__ import annotations

from Core.breaker import BreakerState, CircuitBreaker
from tests.fakes import FakeClock


def _breaker(threshold: int = 3, cooldown: float = 30.0):
    clock = FakeClock()
    changes: list[BreakerState] = []
    return CircuitBreaker(threshold, cooldown, clock=clock, on_change=changes.append), clock, changes


def test_starts_closed_and_allows_calls():
    breaker, _, _ = _breaker()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(5))


def test_opens_after_threshold_consecutive_failures():
    breaker, _, changes = _breaker(threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert changes == [BreakerState.OPEN]


def test_a_success_resets_the_failure_count():
    breaker, _, _ = _breaker(threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_stays_open_until_the_cooldown_has_passed():
    breaker, clock, _ = _breaker(threshold=1, cooldown=30.0)
    breaker.record_failure()
    clock.now += 29.9
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN


def test_half_open_lets_exactly_one_probe_through():
    breaker, clock, _ = _breaker(threshold=1, cooldown=10.0)
    breaker.record_failure()
    clock.now += 10.0
    assert breaker.allow() is True
    assert breaker.allow() is False
    assert breaker.allow() is False


def test_successful_probe_closes_the_breaker():
    breaker, clock, changes = _breaker(threshold=1, cooldown=10.0)
    breaker.record_failure()
    clock.now += 10.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow() and breaker.allow()
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_failed_probe_reopens_for_a_fresh_cooldown():
    breaker, clock, _ = _breaker(threshold=3, cooldown=10.0)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10.0
    assert breaker.allow()
    breaker.record_failure()  # one failure is enough in half-open state
    assert breaker.state is BreakerState.OPEN
    clock.now += 9.0
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow()


def test_release_gives_the_probe_slot_back_without_a_verdict():
    breaker, clock, _ = _breaker(threshold=1, cooldown=10.0)
    breaker.record_failure()
    clock.now += 10.0
    assert breaker.allow()
    breaker.release()  # e.g. the request was cancelled by a barge-in
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()


def test_trip_opens_at_once_and_the_cooldown_still_lets_a_probe_through():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=10.0, clock=clock)
    breaker.trip()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.advance(10.0)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
