from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from Config.schema import DeviceEntity

HERE = Path(__file__).parent

# the home of the command set: what the device sentences may name
ENTITIES = [
    DeviceEntity(id="light.kitchen", name="kitchen light", area="kitchen", area_aliases=["cuisine"],
                 command_topic="luxa-test/kitchen/set", state_topic="luxa-test/kitchen/state"),
    DeviceEntity(id="light.living_room", name="living room lamp", aliases=["lampe du salon"], area="living room",
                 area_aliases=["salon"], command_topic="luxa-test/living_room/set"),
    DeviceEntity(id="switch.coffee", name="coffee machine", aliases=["machine à café"], area="kitchen",
                 command_topic="luxa-test/coffee/set"),
    DeviceEntity(id="fan.bedroom", name="bedroom fan", area="bedroom", command_topic="luxa-test/bedroom_fan/set"),
]


def command_set(language: str | None = None) -> list[tuple[str, str, str, dict]]:
    """(language, text, intent or '-', slots) rows of commands.tsv."""
    with open(HERE / "commands.tsv", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")][1:]
    return [(lang, text, intent, json.loads(slots)) for lang, text, intent, slots in rows
            if language is None or lang == language]


def agrees(match, intent: str, slots: dict) -> bool:
    """The match is the expected intent with the expected slots (numbers compared as numbers)."""
    if intent == "-":
        return match is None
    if match is None or match.intent != intent:
        return False
    for key, want in slots.items():
        got = match.slots.get(key)
        if isinstance(want, (int, float)):
            try:
                if float(got) != float(want):
                    return False
            except (TypeError, ValueError):
                return False
        elif got != want:
            return False
    return True


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
