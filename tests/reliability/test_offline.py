"""Offline proof: a whole voice turn inside a network namespace that has only loopback.

`unshare -n` gives the command a network stack of its own with nothing but `lo`: any connection
to another host fails at once, whichever library makes it. The model hubs' offline switches
(HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE) are removed from the environment rather than set, so
nothing is masked; an audit hook (no_network.py) also records any attempt, caught or not.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

DEADLINE_S = 300
HUB_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
PROBE = """
import socket
for host, port in (("1.1.1.1", 53), ("8.8.8.8", 443)):
    try:
        socket.create_connection((host, port), timeout=3).close()
        print("REACHED", host)
    except OSError as err:
        print("blocked", host, err.errno)
try:
    socket.getaddrinfo("example.com", 443)
    print("RESOLVED")
except OSError:
    print("no name resolution")
server = socket.create_server(("127.0.0.1", 0))
socket.create_connection(server.getsockname(), timeout=3).close()
print("loopback works")
"""


def _namespace_prefix() -> list[str]:
    """`unshare -n` as root, `unshare -rn` (a user namespace) otherwise; skip where neither works."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("unshare (util-linux) and ip (iproute2) are needed: bash scripts/setup.sh --test")
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            # bring loopback up: a namespace starts with `lo` down
            return [*prefix, "sh", "-c", 'ip link set lo up && exec "$@"', "netns"]
    pytest.skip("network namespaces are not permitted here (unshare -n and unshare -rn both failed)")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in HUB_SWITCHES and not (k.startswith("LUXA_") and "__" in k)}


def test_the_namespace_blocks_every_host_but_loopback(repo_root):
    proc = subprocess.run([*_namespace_prefix(), sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=60, env=_env(), cwd=repo_root)
    assert proc.returncode == 0, proc.stderr
    assert "REACHED" not in proc.stdout and "RESOLVED" not in proc.stdout, proc.stdout
    assert proc.stdout.count("blocked") == 2 and "loopback works" in proc.stdout, proc.stdout


def test_the_audit_hook_records_an_attempt_even_when_the_caller_swallows_the_error(repo_root, tmp_path):
    """Without this, an empty attempt log could mean a hook that sees nothing."""
    script, attempts = tmp_path / "sneaky.py", tmp_path / "attempts.log"
    script.write_text("import socket\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=2)\n"
                      "except OSError:\n    pass\n")
    proc = subprocess.run([*_namespace_prefix(), sys.executable, str(Path(__file__).with_name("no_network.py")),
                           str(attempts), str(script)], capture_output=True, text=True, timeout=60, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert "socket.connect '192.0.2.1'" in attempts.read_text().splitlines()


@pytest.mark.timeout(DEADLINE_S + 60)
def test_a_whole_turn_answers_inside_a_namespace_with_only_loopback(repo_root, questions, tmp_path, report):
    out, attempts = tmp_path / "reply.wav", tmp_path / "network-attempts.log"
    attempts.touch()
    cmd = [*_namespace_prefix(), sys.executable, str(Path(__file__).with_name("no_network.py")), str(attempts),
           "run_assistant.py", "turn", "-i", str(questions[0]), "-o", str(out), "--json", "--log-level", "ERROR"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=DEADLINE_S, env=_env(), cwd=repo_root)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "living room" in result["transcript"].lower() and result["reply"].strip()
    stages = {result["backend"][stage] for stage in ("stt", "llm", "tts")}
    assert stages <= {"whisper_base", "primary", "intent", "piper_native"}, result["backend"]
    assert soundfile.info(str(out)).duration > 0.5
    tried = attempts.read_text().splitlines()
    report("offline turn (unshare -n, loopback only)",
           f"transcript {result['transcript']!r}\nreply {result['reply']!r}\nbackends {result['backend']}\n"
           f"network attempts recorded: {len(tried)}")
    assert tried == [], f"something tried to reach the network: {tried[:5]}"
