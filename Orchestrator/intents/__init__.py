"""Commands answered exactly and at once, before the LLM: time, date, timers, stop, repeat,
volume, lights and switches (Home Assistant's hassil sentences, in the transcript's language)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from Config.schema import LuxaConfig
from Orchestrator.intents.devices import Devices
from Orchestrator.intents.handlers import Controls, Handlers
from Orchestrator.intents.matcher import IntentMatch, IntentMatcher
from Orchestrator.intents.timers import Timer, Timers

__all__ = ["Controls", "Handled", "IntentMatch", "Intents"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handled:
    intent: str
    language: str
    text: str  # what to say; "" for commands that only act (stop, never mind)


class Intents:
    def __init__(self, config: LuxaConfig) -> None:
        self.config = config.intents
        self.devices = Devices(config.devices)
        self.timers = Timers(Path(config.service.state_dir).expanduser() / "timers.json", self.config.timer_max_s)
        self.matcher = IntentMatcher(self.config.languages, self.devices.entities)
        self.handlers = Handlers(self.config, self.timers, self.devices)

    async def start(self) -> None:
        await self.devices.start()
        self.matcher.set_entities(self.devices.entities)
        self.matcher.match("what time is it", None)  # hassil builds its tables on the first call: not in a turn
        await self.timers.start()

    async def close(self) -> None:
        await self.timers.close()

    def match(self, text: str, language: str | None) -> IntentMatch | None:
        return self.matcher.match(text, language)

    async def handle(self, match: IntentMatch, last_reply: str, controls: Controls | None) -> Handled:
        text = await self.handlers.handle(match, self.matcher.phrases(match.language), last_reply, controls)
        log.info("intent %s (%s) -> %r", match.intent, match.language, text)
        return Handled(match.intent, match.language, text)

    def on_timer_done(self, announce: Callable[[str, str], None]) -> None:
        """Call `announce(text, language)` when a timer ends (the voice loop says it)."""

        def ring(timer: Timer) -> None:
            language = self.matcher.language_for(timer.language) or next(iter(self.matcher.languages), "en")
            announce(self.handlers.ring_text(timer, self.matcher.phrases(language)), language)

        self.timers.listen(ring)
