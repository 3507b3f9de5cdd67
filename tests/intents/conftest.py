from __future__ import annotations

from pathlib import Path

import pytest

from Config.schema import DeviceEntity

from bench_commands import ENTITIES as ENTITY_CONFIG  # scripts/: the command set and its home
from bench_commands import agrees, command_set  # noqa: F401  (the tests' helpers too)

ENTITIES = [DeviceEntity(**entity) for entity in ENTITY_CONFIG]


@pytest.fixture(scope="session")
def matcher():
    from Orchestrator.intents.matcher import IntentMatcher

    return IntentMatcher(["en", "fr"], ENTITIES)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory):
    """A real mosquitto on a loopback port (Debian's package, installed by scripts/setup.sh --test)."""
    import shutil
    import socket
    import subprocess
    import time

    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        pytest.fail("mosquitto missing: run `bash scripts/setup.sh --test`")
    port = _free_port()
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"mosquitto did not start: {proc.stderr.read().decode(errors='replace')[-500:]}")
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(timeout=5)


@pytest.fixture
def free_port() -> int:
    return _free_port()
