"""What LUXA does and says for each recognised command."""
from __future__ import annotations

import logging
from typing import Any, Protocol

from Config.schema import IntentsConfig
from Orchestrator.intents.devices import Devices, DeviceUnreachable
from Orchestrator.intents.matcher import IntentMatch
from Orchestrator.intents.phrasing import duration_slots, now, say_date, say_duration, say_time
from Orchestrator.intents.timers import Timer, Timers

log = logging.getLogger(__name__)


class Controls(Protocol):
    """What a front door with a speaker lets commands change (the local voice loop has one)."""

    volume: float  # output gain, 0.0-1.0

    def stop(self) -> None: ...


class Handlers:
    def __init__(self, config: IntentsConfig, timers: Timers, devices: Devices) -> None:
        self.config = config
        self.timers = timers
        self.devices = devices

    async def handle(self, match: IntentMatch, phrases: dict[str, Any], last_reply: str,
                     controls: Controls | None) -> str:
        """The sentence to say ("" says nothing: stop, never mind)."""
        name = match.intent
        slots = match.slots
        if name == "HassGetCurrentTime":
            return phrases["time"].format(time=say_time(now(self.config.time_zone), match.language))
        if name == "HassGetCurrentDate":
            return phrases["date"].format(date=say_date(now(self.config.time_zone), match.language))
        if name in ("HassNevermind", "LuxaStop"):
            if controls is not None:
                controls.stop()
            return phrases["stopped"]
        if name == "LuxaIdentity":
            return phrases["identity"]
        if name == "LuxaRepeat":
            return last_reply or phrases["nothing_to_repeat"]
        if name in ("HassSetVolume", "HassSetVolumeRelative"):
            return self._volume(name, slots, phrases, controls)
        if "Timer" in name:
            return self._timer(name, slots, match.language, phrases)
        return await self._device(match, phrases)

    # --- volume ---
    def _volume(self, name: str, slots: dict[str, Any], phrases: dict[str, Any], controls: Controls | None) -> str:
        if controls is None:
            return phrases["no_volume"]
        if name == "HassSetVolume":
            level = float(slots.get("volume_level", 100))
        else:
            step = slots.get("volume_step", "up")
            if isinstance(step, str):
                delta = float(self.config.volume_step) * (1 if step == "up" else -1)
            else:  # "volume up by 20 percent" gives a number; "down" sentences negate it in HA's data
                delta = float(step)
            level = controls.volume * 100 + delta
        controls.volume = min(100.0, max(0.0, level)) / 100
        return phrases["volume"].format(volume=round(controls.volume * 100))

    # --- timers ---
    def _timer(self, name: str, slots: dict[str, Any], language: str, phrases: dict[str, Any]) -> str:
        if name == "HassStartTimer":
            seconds = duration_slots(slots)
            if seconds is None or "conversation_command" in slots:
                return phrases["not_understood"]  # "turn off the lights in 5 minutes": not yet
            if seconds > self.config.timer_max_s:
                return phrases["timer_too_long"].format(duration=say_duration(self.config.timer_max_s, phrases))
            self.timers.add(seconds, language, slots.get("name"))
            return phrases["timer_started"].format(duration=say_duration(seconds, phrases))
        if name == "HassCancelAllTimers":
            for timer in list(self.timers.timers.values()):
                self.timers.cancel(timer)
            return phrases["timers_cancelled"]
        chosen = self.timers.find(duration_slots(slots, "start_"), slots.get("name"))
        if not chosen:
            return phrases["no_timer"]
        timer = chosen[-1]
        if name == "HassCancelTimer":
            self.timers.cancel(timer)
            return phrases["timer_cancelled"]
        if name == "HassPauseTimer":
            self.timers.pause(timer)
            return phrases["timer_paused"]
        if name == "HassUnpauseTimer":
            self.timers.resume(timer)
            return phrases["timer_resumed"]
        if name in ("HassIncreaseTimer", "HassDecreaseTimer"):
            delta = duration_slots(slots) or 0.0
            self.timers.adjust(timer, delta if name == "HassIncreaseTimer" else -delta)
            return phrases["timer_changed"].format(left=say_duration(timer.remaining(), phrases))
        return phrases["timer_left"].format(left=say_duration(timer.remaining(), phrases),
                                            duration=say_duration(timer.duration_s, phrases))

    def ring_text(self, timer: Timer, phrases: dict[str, Any]) -> str:
        return phrases["timer_done"].format(duration=say_duration(timer.duration_s, phrases))

    # --- devices ---
    async def _device(self, match: IntentMatch, phrases: dict[str, Any]) -> str:
        slots = match.slots
        domain = slots.get("domain")
        kind = phrases["kinds"].get(domain or "light", domain or "")
        if "name" in match.unknown:
            return phrases["unknown_device"].format(name=match.unknown["name"])
        if "area" in match.unknown:
            return phrases["no_device_in_area"].format(kind=kind, area=match.unknown["area"])
        if "name" in slots:
            entity = self.devices.by_id(str(slots["name"]))
            targets = [entity] if entity else []
        else:
            targets = self.devices.in_area(str(slots.get("area", "")), domain)
        if not targets:
            return phrases["no_device_in_area"].format(kind=kind, area=match.spoken.get("area", slots.get("area", "")))
        names = f" {phrases['and']} ".join(match.spoken.get("name") or t.name for t in targets)
        try:
            if match.intent == "LuxaGetState":
                state = await self.devices.is_on(targets[0])
                key = {True: "state_on", False: "state_off", None: "state_unknown"}[state]
                return phrases[key].format(name=names)
            if match.intent == "HassLightSet" and "brightness" in slots:
                level = float(slots["brightness"])
                for target in targets:
                    await self.devices.switch(target, level > 0, brightness_pct=level)
                return phrases["brightness"].format(name=names, brightness=round(level))
            on = match.intent == "HassTurnOn"
            for target in targets:
                await self.devices.switch(target, on)
        except DeviceUnreachable as err:
            log.warning("devices: %s", err)
            return phrases["unreachable"]
        return phrases["turned_on" if on else "turned_off"].format(name=names)
