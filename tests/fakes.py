"""Stand-ins shared by the unit tests of logic: a clock the test moves, and a CPU-only GPU status."""
from __future__ import annotations

from Core.gpu import GpuStatus

CPU = GpuStatus("cpu", 1, reason="tests run on the CPU")


class FakeClock:
    """A monotonic clock that only moves when the test says so (breaker cool-downs, cache TTLs)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
