"""Schema-driven fuzzing (schemathesis) of every operation in /openapi.json: no 5xx, ever.

Runs last in this folder (file name order) on the shared daemon: nothing after it depends on
what the fuzzer left in the cache or the sessions.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
MAX_EXAMPLES = 20  # per operation
# the whole run; schemathesis stops generating there and reports. Each of the three runs reaches
# its budget before 20 examples of every operation (the chat and audio ones run the models), so
# the budget is what `make test` spends: 40 s each, 120 s each with --long
MAX_TIME_S = 40
LONG_MAX_TIME_S = 120


def run_schemathesis(daemon, *extra: str, long: bool = False) -> None:
    """Fuzz `daemon`'s operations (all, or those `extra` selects) within MAX_TIME_S (LONG_MAX_TIME_S
    with `long`); no 5xx, no traceback."""
    seconds = LONG_MAX_TIME_S if long else MAX_TIME_S
    schemathesis = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [str(schemathesis), "run", f"{daemon.url}/openapi.json", "--header", f"Authorization: Bearer {daemon.key}",
         "--checks", "not_a_server_error", "--max-examples", str(MAX_EXAMPLES), "--max-time", str(seconds),
         "--request-timeout", "60", "--seed", "9", "--no-color", "--generation-database", "none", *extra],
        capture_output=True, text=True, timeout=seconds + 90)
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Server error" not in run.stdout
    with daemon.client() as client:
        assert client.get("/health").json()["status"] == "ok"  # and the daemon is still fine afterwards
    assert not [line for line in daemon.lines if "Traceback" in line], "the daemon logged a traceback"


def test_fuzzing_every_operation_finds_no_server_error(daemon, client, pytestconfig):
    excluded = []
    if client.get("/v1/voices").status_code == 501:
        # creating and listing voice prompts answer 501 by design while the clone backend is
        # unavailable (tested in test_api_security); the id routes are still fuzzed, and all the
        # voice routes with the clone backend on in test_api_voices
        excluded = ["--exclude-path-regex", "^/v1/voices$"]
        print("clone backend unavailable: POST/GET /v1/voices left out of the fuzz run")
    run_schemathesis(daemon, *excluded, long=pytestconfig.getoption("--long"))
