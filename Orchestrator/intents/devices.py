"""Lights and switches, switched through Home Assistant's REST API or an MQTT broker.

A command is sent once and confirmed by the controller (HTTP status, MQTT QoS 1 acknowledgement);
when the controller cannot be reached, DeviceUnreachable makes the answer say so instead of
claiming a success that did not happen.
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import aiomqtt
import httpx

from Config.schema import DeviceEntity, DevicesConfig

log = logging.getLogger(__name__)

IMPORTED_DOMAINS = ("light", "switch", "fan")


class DeviceUnreachable(Exception):
    """The home controller (Home Assistant or the broker) did not take the command."""


class Devices:
    def __init__(self, config: DevicesConfig) -> None:
        self.config = config
        self.entities: list[DeviceEntity] = list(config.entities)

    async def start(self) -> None:
        """Add Home Assistant's own lights and switches when asked; an unreachable one is not fatal."""
        ha = self.config.home_assistant
        if not (ha.url and ha.import_entities):
            return
        try:
            states = (await self._ha("GET", "/api/states")).json()
        except (DeviceUnreachable, ValueError) as err:
            log.warning("devices: cannot import Home Assistant's entities: %s", err)
            return
        known = {e.id for e in self.entities}
        for state in states:
            entity_id = str(state.get("entity_id", ""))
            name = (state.get("attributes") or {}).get("friendly_name")
            if entity_id.split(".")[0] in IMPORTED_DOMAINS and name and entity_id not in known:
                self.entities.append(DeviceEntity(id=entity_id, name=str(name), via="home_assistant"))
        log.info("devices: %d entities (%d from Home Assistant)", len(self.entities), len(self.entities) - len(known))

    def by_id(self, entity_id: str) -> DeviceEntity | None:
        return next((e for e in self.entities if e.id == entity_id), None)

    def in_area(self, area: str, domain: str | None) -> list[DeviceEntity]:
        return [e for e in self.entities if e.area == area and (domain is None or e.id.startswith(f"{domain}."))]

    async def switch(self, entity: DeviceEntity, on: bool, brightness_pct: float | None = None) -> None:
        if entity.via == "home_assistant":
            domain = entity.id.split(".")[0]
            body: dict[str, object] = {"entity_id": entity.id}
            if brightness_pct is not None:
                body["brightness_pct"] = round(brightness_pct)
            await self._ha("POST", f"/api/services/{domain}/turn_{'on' if on else 'off'}", json=body)
            return
        if not entity.command_topic:
            raise DeviceUnreachable(f"{entity.id} has no command_topic")
        payload = entity.payload_on if on else entity.payload_off
        if brightness_pct is not None:
            payload = str(round(brightness_pct))  # a dimmer's command topic takes the level, 0-100
        await self._publish(entity.command_topic, payload)

    async def is_on(self, entity: DeviceEntity) -> bool | None:
        """True/False from the controller's state; None when it does not know (no state topic yet)."""
        if entity.via == "home_assistant":
            state = (await self._ha("GET", f"/api/states/{entity.id}")).json().get("state")
            return {"on": True, "off": False}.get(str(state))
        if not entity.state_topic:
            return None
        payload = await self._retained(entity.state_topic)
        if payload is None:
            return None
        return {entity.payload_on: True, entity.payload_off: False}.get(payload)

    # --- Home Assistant ---
    async def _ha(self, method: str, path: str, json: object | None = None) -> httpx.Response:
        ha = self.config.home_assistant
        if not ha.url:
            raise DeviceUnreachable("devices.home_assistant.url is not set")
        headers = {"Authorization": f"Bearer {self._token()}"}
        try:
            async with httpx.AsyncClient(base_url=ha.url, timeout=ha.timeout_s, headers=headers) as client:
                response = await client.request(method, path, json=json)
        except httpx.HTTPError as err:
            raise DeviceUnreachable(f"Home Assistant at {ha.url}: {type(err).__name__}: {err}") from None
        if response.status_code >= 400:
            raise DeviceUnreachable(f"Home Assistant answered {response.status_code} to {method} {path}")
        return response

    def _token(self) -> str:
        ha = self.config.home_assistant
        if ha.token_file:
            try:
                return Path(ha.token_file).expanduser().read_text(encoding="utf-8").strip()
            except OSError as err:
                raise DeviceUnreachable(f"devices.home_assistant.token_file: {err}") from None
        token = os.environ.get(ha.token_env, "")
        if not token:
            raise DeviceUnreachable(f"no Home Assistant token: set devices.home_assistant.token_file or ${ha.token_env}")
        return token

    # --- MQTT ---
    def _client(self) -> aiomqtt.Client:
        mqtt = self.config.mqtt
        if not mqtt.host:
            raise DeviceUnreachable("devices.mqtt.host is not set")
        return aiomqtt.Client(mqtt.host, mqtt.port, username=mqtt.username,
                              password=os.environ.get(mqtt.password_env) or None, timeout=mqtt.timeout_s)

    async def _publish(self, topic: str, payload: str) -> None:
        try:
            async with asyncio.timeout(self.config.mqtt.timeout_s * 2):
                async with self._client() as client:
                    await client.publish(topic, payload, qos=1)
        except (aiomqtt.MqttError, OSError, TimeoutError) as err:
            broker = f"{self.config.mqtt.host}:{self.config.mqtt.port}"
            raise DeviceUnreachable(f"MQTT broker {broker}: {err or 'timed out'}") from None

    async def _retained(self, topic: str) -> str | None:
        """The retained state on `topic`, or None when none arrives within the timeout."""
        try:
            async with self._client() as client:
                await client.subscribe(topic, qos=1)
                async with asyncio.timeout(self.config.mqtt.timeout_s):
                    async for message in client.messages:
                        return bytes(message.payload).decode("utf-8", "replace") if isinstance(
                            message.payload, (bytes, bytearray)) else str(message.payload)
        except TimeoutError:
            return None
        except (aiomqtt.MqttError, OSError) as err:
            raise DeviceUnreachable(f"MQTT broker {self.config.mqtt.host}:{self.config.mqtt.port}: {err}") from None
        return None
