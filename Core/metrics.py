"""One Prometheus registry for the process, metric names `luxa_<stage>_<what>`.

Metrics are created through get-or-create helpers so several managers in one process (tests,
a hot-swap) share one time series instead of failing on duplicate registration.
"""
from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
_LOCK = threading.Lock()
_METRICS: dict[str, object] = {}

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


def _get(kind, name: str, doc: str, labels: tuple[str, ...], **kw):
    with _LOCK:
        metric = _METRICS.get(name)
        if metric is None:
            metric = kind(name, doc, labels, registry=REGISTRY, **kw)
            _METRICS[name] = metric
        return metric


def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return _get(Counter, name, doc, labels)


def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return _get(Gauge, name, doc, labels)


def histogram(name: str, doc: str, labels: tuple[str, ...] = (), buckets=LATENCY_BUCKETS) -> Histogram:
    return _get(Histogram, name, doc, labels, buckets=buckets)


class StageMetrics:
    """The metrics every fallback chain exports for its stage."""

    def __init__(self, stage: str, latency: str = "latency_seconds", requests: str = "requests_total"):
        self.latency = histogram(f"luxa_{stage}_{latency}", f"{stage} latency per backend", ("backend",))
        self.requests = counter(f"luxa_{stage}_{requests}", f"{stage} requests by backend and outcome", ("backend", "outcome"))
        self.fallbacks = counter(f"luxa_{stage}_fallback_total", f"{stage} requests passed on to the next backend", ("backend",))
        self.healthy = gauge(f"luxa_{stage}_backend_healthy", f"1 when the {stage} backend's breaker is closed", ("backend",))
        self.breaker = gauge(f"luxa_{stage}_breaker_state", f"{stage} breaker: 0 closed, 1 half-open, 2 open", ("backend",))


def exposition() -> bytes:
    from prometheus_client import generate_latest

    return generate_latest(REGISTRY)
