"""What every benchmark report carries: the machine, the models, and p50/p95 of a list of figures.

Figures from a shared 2-core machine mean little without the load it was under, so each report
records the load average at its start and end next to the CPU model. The set-up every script
repeats (its arguments, the config and the GPU, the report's head, one-line errors, the JSON file)
is here too.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def default_corpus() -> Path:
    return Path(os.environ.get("LUXA_CORPUS") or ROOT.parent / "shared" / "corpus")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # Windows has no load average
        return None


def machine() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": load_average(),
            "system": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def models(config) -> dict:
    """The model each stage's first enabled backend runs on (what a turn normally uses)."""
    def first(backends: dict) -> tuple[str, object] | None:
        on = sorted(((name, b) for name, b in backends.items() if b.enabled), key=lambda nb: nb[1].priority)
        return on[0] if on else None

    stt, llm = first(config.stt.backends), first(config.llm.backends)
    tts = first(config.tts.backends)
    voice = config.tts.voices.get(config.tts.default_language)
    return {
        "stt": f"{stt[0]}: {stt[1].model} ({stt[1].device}, {stt[1].compute_type}, beam {config.stt.beam_size})"
        if stt else None,
        "llm": f"{llm[0]}: {llm[1].model} ({llm[1].kind}, {config.llm.threads} threads, "
               f"temperature {config.llm.temperature})" if llm else None,
        "tts": f"{tts[0]}: {voice.piper if voice else None}" if tts else None,
    }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100, linear interpolation) every benchmark reports; NaN when empty."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


def percentiles(values: list[float], digits: int = 1) -> dict[str, float | None]:
    clean = [v for v in values if v is not None]
    if not clean:
        return {"p50": None, "p95": None, "n": 0}
    return {"p50": round(percentile(clean, 50), digits), "p95": round(percentile(clean, 95), digits), "n": len(clean)}


def describe_machine(info: dict) -> str:
    load = info.get("load_average")
    return (f"machine: {info['cpu']}, {info['cores']} cores, load average "
            f"{' '.join(str(x) for x in load) if load else 'n/a'} ({info['system']}, Python {info['python']})")


# -- the set-up every benchmark script repeats: arguments, config, GPU, report, errors ----------

def add_config_args(parser: argparse.ArgumentParser, json_help: str | None = None) -> None:
    """--json OUT, --config FILE and --set KEY=VALUE (repeatable, into args.overrides)."""
    parser.add_argument("--json", metavar="OUT", help=json_help)
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")


def load_pinned(config_file: str | None, overrides: list[str]) -> tuple[Any, Any]:
    """The config, with the process pinned to its GPU, and the GPU check's status (what managers take)."""
    from Config import load_config
    from Core import gpu

    config = load_config(config_file, overrides)
    gpu.pin(config.gpu.index)
    return config, gpu.check(config.gpu.index, config.gpu.name_pattern, config.gpu.min_free_mb, config.gpu.on_missing)


def report_header(config, overrides: list[str], settings: dict | None = None, **extra: Any) -> dict:
    """The start of a report: the machine, the models, `extra`, then the settings it ran with."""
    return {"machine": machine(), "models": models(config), **extra,
            "settings": {**(settings or {}), "overrides": overrides}}


def failed(script: str, err: Exception, exit_code: int | None = None) -> int:
    """One line on stderr; the exit status: `exit_code`, else the error's own (1 when it has none)."""
    print(f"{script}: error: {err}", file=sys.stderr)
    return exit_code if exit_code is not None else getattr(err, "exit_code", 1)


def write_json(path: str | None, report: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
