"""Run one measurement in a fresh Python process and read back the number it prints.

A memory figure taken inside the pytest process also counts whatever earlier tests left in its
heap and threads (a CI run once saw +37 MB around a Piper sentence that leaves +1 MB alone)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure_in_fresh_process(module: str, function: str, *args: object, timeout_s: float = 240.0) -> float:
    """`await module.function(*args)` in a new interpreter (args as Python literals); its float result."""
    call = f"{function}({', '.join(map(repr, args))})"
    code = f"import asyncio; from {module} import {function}; print('RESULT', asyncio.run({call}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"{module}.{function} failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
    return float(lines[-1].split()[1])
