"""Device commands against a real MQTT broker (mosquitto) and Home Assistant's REST API contract.

Here Home Assistant's side is a loopback server answering as its REST API documents it and recording
every call (so a refused token is tested too); test_home_assistant_real.py runs a real Home Assistant
core, in an environment of its own (Python 3.13), when one is installed.
"""
from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiomqtt
import pytest

from Config.loader import load_config
from Orchestrator.intents import Intents
from tests.intents.conftest import ENTITIES

pytestmark = pytest.mark.asyncio(loop_scope="function")
UNREACHABLE = "I can't reach the home controller right now."


def _intents(tmp_path, **devices) -> Intents:
    config = load_config(environ={}, overrides=[f"service.state_dir={tmp_path}"])
    config.devices = config.devices.model_copy(update=devices)
    return Intents(config)


async def _say(intents: Intents, text: str, language: str = "en") -> str:
    match = intents.match(text, language)
    assert match is not None, text
    return (await intents.handle(match, "", None)).text


async def test_turn_on_the_kitchen_light_publishes_once_to_its_topic(tmp_path, mqtt_broker):
    intents = _intents(tmp_path, entities=ENTITIES,
                       mqtt=load_config(environ={}).devices.mqtt.model_copy(update={"host": "127.0.0.1", "port": mqtt_broker}))
    await intents.start()
    async with aiomqtt.Client("127.0.0.1", mqtt_broker) as watcher:
        await watcher.subscribe("luxa-test/#", qos=1)
        said = await _say(intents, "Turn on the kitchen light")
        said_fr = await _say(intents, "Éteins la machine à café", "fr")
        got = []
        try:
            async with asyncio.timeout(1.0):  # anything else published in the next second counts too
                async for message in watcher.messages:
                    got.append((str(message.topic), message.payload.decode()))
        except TimeoutError:
            pass
    # "the kitchen light" names the area's light, not the coffee machine that is in the kitchen too
    assert got == [("luxa-test/kitchen/set", "ON"), ("luxa-test/coffee/set", "OFF")]
    assert said == "Turned on the kitchen light." and said_fr.startswith("J'ai éteint")
    await intents.close()


async def test_the_state_comes_from_the_retained_state_topic(tmp_path, mqtt_broker):
    intents = _intents(tmp_path, entities=ENTITIES,
                       mqtt=load_config(environ={}).devices.mqtt.model_copy(update={"host": "127.0.0.1", "port": mqtt_broker}))
    async with aiomqtt.Client("127.0.0.1", mqtt_broker) as device:
        await device.publish("luxa-test/kitchen/state", "ON", qos=1, retain=True)
    assert await _say(intents, "Is the kitchen light on?") == "The kitchen light is on."


async def test_an_unreachable_broker_gets_an_honest_answer(tmp_path, free_port):
    intents = _intents(tmp_path, entities=ENTITIES,
                       mqtt=load_config(environ={}).devices.mqtt.model_copy(
                           update={"host": "127.0.0.1", "port": free_port, "timeout_s": 1.0}))
    assert await _say(intents, "Turn on the kitchen light") == UNREACHABLE


async def test_an_unknown_device_is_named_and_nothing_is_sent(tmp_path, mqtt_broker):
    intents = _intents(tmp_path, entities=ENTITIES)
    assert await _say(intents, "Turn on the garage light") == "I don't know any light in the garage."


class _HomeAssistant(BaseHTTPRequestHandler):
    """Home Assistant's REST API as documented: bearer token, /api/states, /api/services/<domain>/<service>."""

    calls: list[tuple[str, str, object]] = []
    states = [{"entity_id": "light.porch", "state": "off", "attributes": {"friendly_name": "Porch light"}},
              {"entity_id": "sensor.outside", "state": "4.5", "attributes": {"friendly_name": "Outside temperature"}}]

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != "Bearer test-token":
            self._reply(401, {"message": "Invalid authentication"})
            return False
        return True

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path == "/api/states":
            return self._reply(200, self.states)
        entity = self.path.removeprefix("/api/states/")
        found = [s for s in self.states if s["entity_id"] == entity]
        self._reply(200, found[0]) if found else self._reply(404, {"message": "Entity not found."})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.calls.append(("POST", self.path, body))
        self._reply(200, [])  # the states that changed; LUXA does not read them

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def home_assistant():
    _HomeAssistant.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HomeAssistant)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_home_assistant_entities_are_imported_and_switched_through_its_rest_api(tmp_path, home_assistant, monkeypatch):
    monkeypatch.setenv("LUXA_HA_TOKEN", "test-token")
    ha = load_config(environ={}).devices.home_assistant.model_copy(update={"url": home_assistant, "import_entities": True})
    intents = _intents(tmp_path, home_assistant=ha)
    await intents.start()
    assert [e.id for e in intents.devices.entities] == ["light.porch"]  # lights and switches only
    assert await _say(intents, "Turn on the porch light") == "Turned on the porch light."
    assert await _say(intents, "Is the porch light on?") == "The porch light is off."
    assert _HomeAssistant.calls == [("POST", "/api/services/light/turn_on", {"entity_id": "light.porch"})]
    await intents.close()


async def test_a_refused_token_or_a_home_assistant_that_is_down_gets_an_honest_answer(tmp_path, home_assistant, free_port,
                                                                                   monkeypatch):
    monkeypatch.setenv("LUXA_HA_TOKEN", "wrong")
    porch = ENTITIES[0].model_copy(update={"id": "light.porch", "name": "porch light", "area": None,
                                           "via": "home_assistant"})
    for url in (home_assistant, f"http://127.0.0.1:{free_port}"):
        ha = load_config(environ={}).devices.home_assistant.model_copy(update={"url": url, "timeout_s": 1.0})
        intents = _intents(tmp_path, home_assistant=ha, entities=[porch])
        assert await _say(intents, "Turn on the porch light") == UNREACHABLE
    assert _HomeAssistant.calls == []
