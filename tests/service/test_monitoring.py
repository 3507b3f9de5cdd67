"""monitoring/: the alert rules pass promtool (syntax and their own unit tests), the dashboard is
valid, every query in it is valid PromQL, and every metric it names is one the code exports."""
from __future__ import annotations

import importlib
import json
import pkgutil
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from Core import metrics

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool missing (scripts/setup.sh --test installs prometheus)")
METRIC_NAME = re.compile(r"\b(?:luxa|process)_[a-z0-9_]*[a-z0-9]")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",),
            "summary": ("", "_sum", "_count"), "info": ("_info",)}


@pytest.fixture(scope="module")
def monitoring(repo_root: Path) -> Path:
    return repo_root / "monitoring"


@pytest.fixture(scope="module")
def dashboard(monitoring: Path) -> dict:
    return json.loads((monitoring / "luxa-dashboard.json").read_text())


def dashboard_queries(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def alert_queries(monitoring: Path) -> list[str]:
    rules = yaml.safe_load((monitoring / "luxa-alerts.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_alert_rules_pass_promtool_check(monitoring):
    result = promtool("check", "rules", *sorted(p.name for p in monitoring.glob("*alerts.yml")), cwd=monitoring)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alert_rules_fire_and_stay_quiet_as_their_unit_tests_expect(monitoring):
    result = promtool("test", "rules", "luxa-alerts-test.yml", cwd=monitoring)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_example_prometheus_config_is_valid(monitoring):
    result = promtool("check", "config", "prometheus.yml", cwd=monitoring)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_every_dashboard_query_is_valid_promql(dashboard, tmp_path):
    """Each query becomes a recording rule, which promtool parses; Grafana's variables get values."""
    rules = [{"record": f"luxa_dashboard:query{i}",
              "expr": q.replace("$__rate_interval", "5m").replace("$job", "luxa")}
             for i, q in enumerate(dashboard_queries(dashboard))]
    (tmp_path / "queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_is_importable_grafana_json(dashboard):
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert all(t["refId"] and t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


def test_dashboard_shows_what_the_issue_asks_for(dashboard):
    queries = " ".join(dashboard_queries(dashboard))
    for wanted in ("histogram_quantile(0.5, sum by (le) (rate(luxa_turn_latency_seconds_bucket",
                   "histogram_quantile(0.95, sum by (le) (rate(luxa_turn_latency_seconds_bucket",
                   "luxa_stt_latency_seconds_bucket", "luxa_llm_first_token_seconds_bucket",
                   "luxa_tts_synthesis_seconds_bucket", "luxa_tts_fallback_total", "luxa_stt_breaker_state",
                   "luxa_tts_cache_hits_total", "luxa_llm_tokens_per_second_sum", "luxa_stt_rtf_sum",
                   "process_resident_memory_bytes"):
        assert wanted in queries, wanted


# --- every metric named in monitoring/ exists in the code ------------------------------------


def exported_names() -> set[str]:
    """Series names the registry can expose, including families that have no labelled child yet."""
    names = set()
    for family in metrics.REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def owner(name: str) -> str:
    for stage in ("stt", "llm", "tts"):
        if name.startswith(f"luxa_{stage}_"):
            return stage
    return "process" if name.startswith("process_") or name == "luxa_build_info" else "orchestrator"


def _build_manager(package: str, cls: str) -> None:
    from Config import LuxaConfig
    from Core.gpu import GpuStatus

    module = pytest.importorskip(package, reason=f"{package} is not written yet")
    manager_class = getattr(module, cls, None)
    if manager_class is None:
        pytest.skip(f"{package}.{cls} does not exist yet")
    manager_class(LuxaConfig(), GpuStatus(device="cpu", index=0))  # builds the chain and its metrics; loads nothing


def _import_orchestrator() -> None:
    """The turn and state metrics live in the lead's Orchestrator modules, whichever they are."""
    import Orchestrator

    for module in pkgutil.iter_modules(Orchestrator.__path__):
        if module.name not in ("cli", "commands", "service"):
            importlib.import_module(f"Orchestrator.{module.name}")


def _register_process() -> None:
    from Orchestrator.service.process_metrics import register_process_metrics

    register_process_metrics()


OWNERS = {
    "stt": lambda: _build_manager("STT", "RobustSTTManager"),
    "llm": lambda: _build_manager("LLM", "EnhancedLLMManager"),
    "tts": lambda: _build_manager("TTS", "UnifiedTTSManager"),
    "orchestrator": _import_orchestrator,
    "process": _register_process,
}


@pytest.mark.parametrize("group", sorted(OWNERS))
def test_monitoring_uses_only_metric_names_the_code_exports(group, dashboard, monitoring):
    used = {n for q in dashboard_queries(dashboard) + alert_queries(monitoring) for n in METRIC_NAME.findall(q)}
    wanted = {n for n in used if owner(n) == group}
    assert wanted, f"monitoring/ names no {group} metric"
    OWNERS[group]()
    missing = wanted - exported_names()
    assert not missing, f"not exported by the code: {sorted(missing)}"


# --- a real Prometheus scrapes the endpoint ----------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(port: int, promql: str) -> list[dict]:
    import urllib.parse
    import urllib.request

    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())["data"]["result"]
    except OSError:
        return []  # Prometheus is still starting


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus missing (scripts/setup.sh --test)")
async def test_prometheus_scrapes_the_metrics_endpoint(tmp_path):
    import asyncio
    import time

    from Config.schema import MetricsConfig
    from Orchestrator.service.http import start_http

    handle = await start_http(MetricsConfig.model_construct(host="127.0.0.1", port=0), lambda: {"state": "ok"})
    prom_port = _free_port()
    config = {"global": {"scrape_interval": "1s"},
              "scrape_configs": [{"job_name": "luxa", "static_configs": [{"targets": [f"127.0.0.1:{handle.port}"]}]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("w")
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90  # a hang guard on a loaded machine, not a measurement
        found: list[dict] = []
        while time.monotonic() < deadline and prometheus.poll() is None:
            found = await asyncio.to_thread(_query, prom_port, 'up{job="luxa"} == 1 and on() luxa_build_info')
            if found:
                break
            await asyncio.sleep(0.5)
        memory = await asyncio.to_thread(_query, prom_port, 'process_resident_memory_bytes{job="luxa"}')
    finally:
        prometheus.terminate()
        prometheus.wait(30)
        log.close()
        await handle.close()
    assert found, (tmp_path / "prometheus.log").read_text()[-2000:]
    assert float(memory[0]["value"][1]) > 0
