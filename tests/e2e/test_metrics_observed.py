"""What the dashboard and the alerts show is what a real turn records.

The daemon runs on the virtual audio server with its metrics endpoint on, answers one spoken
question, and then every metric that monitoring/ uses must have been observed, unless it only
moves on an event that a healthy turn does not have (listed below with the reason).
"""
from __future__ import annotations

import json
import urllib.request

import pytest
from audio_harness import AssistantProcess
from prometheus_client.parser import text_string_to_metric_families

from tests.service.test_monitoring import METRIC_NAME, alert_queries, dashboard_queries

pytestmark = pytest.mark.e2e

EVENT_ONLY = {
    "luxa_barge_in_total": "only when the user speaks over a reply",
    "luxa_stt_fallback_total": "only when a backend fails",
    "luxa_llm_fallback_total": "only when a backend fails",
    "luxa_tts_fallback_total": "only when a backend fails",
    "luxa_tts_emergency_total": "only when every voice fails",
    "luxa_tts_cache_hits_total": "only when a text is spoken again",
}
SERIES_SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def observed(families: dict, name: str) -> bool:
    """A histogram counted something, a counter moved, a gauge exists."""
    base = name
    for suffix in SERIES_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in families:
            base = name.removesuffix(suffix)
    family = families.get(base)
    if family is None:
        return False
    if family.type == "histogram":
        return any(s.name == f"{base}_count" and s.value > 0 for s in family.samples)
    if family.type == "counter":
        return any(s.value > 0 for s in family.samples)
    return bool(family.samples)


def test_one_spoken_turn_observes_every_metric_the_dashboard_and_alerts_use(virtual_audio, question, repo_root):
    monitoring = repo_root / "monitoring"
    dashboard = json.loads((monitoring / "luxa-dashboard.json").read_text())
    used = {n for q in dashboard_queries(dashboard) + alert_queries(monitoring) for n in METRIC_NAME.findall(q)}
    port = _free_port()
    # the corpus command would be answered by a command handler: the LLM's metrics need a question for the LLM
    luxa = AssistantProcess(virtual_audio.env, "--set", "metrics.enabled=true", "--set", f"metrics.port={port}",
                            "--set", "intents.enabled=false")
    try:
        luxa.wait_for("LUXA is listening", timeout=300)
        virtual_audio.play_into_mic(question).wait(timeout=30)
        luxa.wait_for(r"^luxa: ", timeout=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        luxa.stop(timeout=30)
        luxa.kill()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    missing = sorted(n for n in used if n not in EVENT_ONLY and not observed(families, n))
    assert not missing, f"used by monitoring/ but not observed after a real turn: {missing}"
    stale = [e for e in EVENT_ONLY if e not in used]
    assert not stale, f"EVENT_ONLY lists metrics monitoring/ no longer uses: {stale}"
