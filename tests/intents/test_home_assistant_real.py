"""Lights switched through a real Home Assistant core (2025.4.4) and its demo lights.

Home Assistant needs Python 3.13 and about 820 MB, so it lives in an environment of its own made by
`bash scripts/home_assistant_env.sh` ($LUXA_HA_VENV, default ~/.cache/luxa/home-assistant; 2-3
minutes), not by `make test`. These tests run when that environment exists; with
LUXA_TEST_HOME_ASSISTANT=1 they make it first when it is missing (and fail if they cannot);
LUXA_TEST_HOME_ASSISTANT=0 skips them. Otherwise they skip, naming the command.

The module starts `hass --skip-pip` on a loopback port with a fresh configuration directory
(http, api, onboarding and the demo integration), makes a long-lived token the way the onboarding
page does (scripts/home_assistant_token.py), and LUXA reaches it with its own config: url, token
file, import_entities. States are read back from Home Assistant's REST API, not from LUXA.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from Config.loader import load_config
from Orchestrator.intents import Intents

pytestmark = pytest.mark.asyncio(loop_scope="function")
ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("LUXA_HA_VENV") or Path.home() / ".cache/luxa/home-assistant").expanduser()
HASS = VENV / "bin" / "hass"
WANTED = os.environ.get("LUXA_TEST_HOME_ASSISTANT", "")
UNREACHABLE = "I can't reach the home controller right now."
LIGHT = "light.bed_light"  # the demo integration's "Bed Light", off at start


@dataclass
class RealHomeAssistant:
    url: str
    token_file: Path
    process: subprocess.Popen[bytes]

    def state(self, entity_id: str) -> str:
        token = self.token_file.read_text().strip()
        response = httpx.get(f"{self.url}/api/states/{entity_id}", headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        return str(response.json()["state"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _hass() -> Path:
    if WANTED == "0":
        pytest.skip("LUXA_TEST_HOME_ASSISTANT=0")
    if not HASS.exists():
        if WANTED != "1":
            pytest.skip(f"no Home Assistant environment at {VENV}: run `bash scripts/home_assistant_env.sh` "
                        "(or set LUXA_TEST_HOME_ASSISTANT=1)")
        made = subprocess.run(["bash", str(ROOT / "scripts/home_assistant_env.sh")], capture_output=True, text=True,
                              env={**os.environ, "LUXA_HA_VENV": str(VENV)})
        if made.returncode != 0:
            pytest.fail(f"scripts/home_assistant_env.sh failed: {made.stderr[-1000:]}")
    return HASS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check, process: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Home Assistant: no {what} (exit {process.poll()}); log tail:\n"
                        f"{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)  # Home Assistant has no event to await from outside: poll its HTTP API


@pytest.fixture(scope="module")
def real_home_assistant(tmp_path_factory):
    hass = _hass()
    config_dir = tmp_path_factory.mktemp("home-assistant")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    (config_dir / "configuration.yaml").write_text(
        "homeassistant:\n  name: LUXA test\n  unit_system: metric\n  time_zone: UTC\n"
        f"http:\n  server_host: 127.0.0.1\n  server_port: {port}\n"
        "api:\nonboarding:\ndemo:\nlogger:\n  default: warning\n")
    log = config_dir / "hass.out"
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen([str(hass), "-c", str(config_dir), "--skip-pip"], stdout=out,
                                   stderr=subprocess.STDOUT)
    _wait("HTTP API", lambda: httpx.get(f"{url}/api/onboarding", timeout=2).status_code == 200, process, log)
    made = subprocess.run([str(hass.parent / "python"), str(ROOT / "scripts/home_assistant_token.py"), url],
                          capture_output=True, text=True, timeout=60)
    if made.returncode != 0:
        process.kill()
        pytest.fail(f"no long-lived token: {made.stderr[-1000:]}")
    token_file = config_dir / "luxa_token"
    token_file.write_text(made.stdout.strip() + "\n")
    ha = RealHomeAssistant(url, token_file, process)
    _wait(f"{LIGHT} from the demo", lambda: ha.state(LIGHT) in ("on", "off"), process, log)
    print(f"Home Assistant up with its demo lights in {time.monotonic() - started:.1f} s", file=sys.stderr)
    yield ha
    ha.stop()


def _intents(tmp_path, ha: RealHomeAssistant) -> Intents:
    config = load_config(environ={}, overrides=[f"service.state_dir={tmp_path}"])
    home_assistant = config.devices.home_assistant.model_copy(update={
        "url": ha.url, "token_file": str(ha.token_file), "import_entities": True})
    config.devices = config.devices.model_copy(update={"home_assistant": home_assistant})
    return Intents(config)


async def _say(intents: Intents, text: str) -> str:
    match = intents.match(text, "en")
    assert match is not None, text
    return (await intents.handle(match, "", None)).text


async def test_a_demo_light_is_imported_and_switched_on_and_off(tmp_path, real_home_assistant):
    ha = real_home_assistant
    intents = _intents(tmp_path, ha)
    await intents.start()
    imported = {e.id: e for e in intents.devices.entities}
    assert imported[LIGHT].name == "Bed Light" and imported[LIGHT].via == "home_assistant"
    assert {"light.ceiling_lights", "switch.decorative_lights"} <= set(imported)
    assert not any(e.startswith(("sensor.", "media_player.")) for e in imported)  # lights, switches, fans only
    assert ha.state(LIGHT) == "off"

    said_on = await _say(intents, "Turn on the bed light")
    assert ha.state(LIGHT) == "on"
    asked = await _say(intents, "Is the bed light on?")
    said_off = await _say(intents, "Turn off the bed light")
    assert ha.state(LIGHT) == "off"
    assert (said_on, asked, said_off) == ("Turned on the bed light.", "The bed light is on.",
                                          "Turned off the bed light.")
    await intents.close()


async def test_a_stopped_home_assistant_gets_an_honest_answer(tmp_path, real_home_assistant):
    ha = real_home_assistant
    intents = _intents(tmp_path, ha)
    await intents.start()  # imports the demo lights while it runs...
    ha.stop()  # ...then it goes away; this is the module's last test
    assert await _say(intents, "Turn on the bed light") == UNREACHABLE
    await intents.close()
