"""Process metrics on the LUXA registry, and the psutil version used where /proc does not exist."""
from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, ProcessCollector

from Core import metrics
from Orchestrator.service.process_metrics import PsutilProcessCollector, build_version, register_process_metrics


def _values(registry) -> dict[str, float]:
    return {s.name: s.value for family in registry.collect() for s in family.samples}


def test_register_adds_process_and_build_metrics_once():
    register_process_metrics()
    register_process_metrics()  # a second call must not raise "Duplicated timeseries"
    values = _values(metrics.REGISTRY)
    assert values["process_resident_memory_bytes"] > 0
    assert values["process_start_time_seconds"] > 0
    build = [s for f in metrics.REGISTRY.collect() if f.name == "luxa_build_info" for s in f.samples]
    assert build[0].labels == {"version": build_version(), "python": platform.python_version(), "platform": "linux"}


def test_psutil_collector_reports_the_same_process_as_the_proc_reader():
    proc, ps = CollectorRegistry(), CollectorRegistry()
    ProcessCollector(registry=proc)
    PsutilProcessCollector(registry=ps)
    a, b = _values(proc), _values(ps)
    assert set(b) <= set(a)  # the same names, so the dashboard works on Windows too
    assert abs(a["process_start_time_seconds"] - b["process_start_time_seconds"]) < 1.0
    # resident memory moves between the two reads; both must see the same order of magnitude
    assert 0.5 < a["process_resident_memory_bytes"] / b["process_resident_memory_bytes"] < 2.0
    assert b["process_cpu_seconds_total"] > 0
