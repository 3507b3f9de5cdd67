"""Process metrics on the LUXA registry: memory, CPU, start time (restarts) and build info.

The standard names (process_resident_memory_bytes, process_start_time_seconds, ...) are kept so
stock dashboards and the alert `changes(process_start_time_seconds[...])` work. prometheus_client's
ProcessCollector reads /proc and exports nothing elsewhere, so on Windows the same names come
from psutil.
"""
from __future__ import annotations

import os
import platform
import threading
from collections.abc import Iterator
from importlib import metadata

import psutil
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from Core import metrics

_LOCK = threading.Lock()
_registered = False


class PsutilProcessCollector:
    """ProcessCollector's metric names, measured with psutil (for systems without /proc)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._process = psutil.Process()
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterator[Metric]:
        p = self._process
        memory = p.memory_info()
        cpu = p.cpu_times()
        yield GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.", memory.rss)
        yield GaugeMetricFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.", memory.vms)
        yield GaugeMetricFamily("process_start_time_seconds",
                                "Start time of the process since unix epoch in seconds.", p.create_time())
        yield CounterMetricFamily("process_cpu_seconds", "Total user and system CPU time spent in seconds.",
                                  cpu.user + cpu.system)


def build_version() -> str:
    try:
        return metadata.version("luxa")
    except metadata.PackageNotFoundError:  # run from a checkout that was never pip-installed
        return "unknown"


def register_process_metrics() -> None:
    """Add process and build metrics to Core.metrics.REGISTRY once per process."""
    global _registered
    with _LOCK:
        if _registered:
            return
        if os.path.exists("/proc/self/stat"):
            ProcessCollector(registry=metrics.REGISTRY)
        else:
            PsutilProcessCollector(registry=metrics.REGISTRY)
        info = metrics.gauge("luxa_build_info", "always 1; the labels say which build runs",
                             ("version", "python", "platform"))
        info.labels(build_version(), platform.python_version(), platform.system().lower()).set(1)
        _registered = True
