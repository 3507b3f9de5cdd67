"""What every benchmark report carries: the machine, the models, and p50/p95 of a list of figures.

Figures from a shared 2-core machine mean little without the load it was under, so each report
records the load average at its start and end next to the CPU model.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

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
