"""Commands answered exactly and at once, before the LLM: time, date, timers, stop, repeat,
volume, lights and switches (Home Assistant's hassil sentences, in the transcript's language)."""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
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
MATCHES_KEPT = 32  # a turn asks for the same text more than once (hearing it, then answering it)


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
        self._matches: OrderedDict[tuple[str, str | None], IntentMatch | None] = OrderedDict()
        self._matches_lock = threading.Lock()

    async def start(self) -> None:
        await self.devices.start()
        self.matcher.set_entities(self.devices.entities)
        self._matches.clear()
        self.matcher.match("what time is it", None)  # hassil builds its tables on the first call: not in a turn
        await self.timers.start()

    async def close(self) -> None:
        await self.timers.close()

    def match(self, text: str, language: str | None) -> IntentMatch | None:
        """The command in `text`, or None. Matching a long sentence against every template takes tens
        of milliseconds: the voice loop calls `match_off_loop` first, and the answer finds it here."""
        key = (text, language)
        with self._matches_lock:
            if key in self._matches:
                self._matches.move_to_end(key)
                return self._matches[key]
        found = self.matcher.match(text, language)
        with self._matches_lock:
            self._matches[key] = found
            while len(self._matches) > MATCHES_KEPT:
                self._matches.popitem(last=False)
        return found

    async def match_off_loop(self, text: str, language: str | None) -> IntentMatch | None:
        return await asyncio.to_thread(self.match, text, language)

    def stt_prompt(self, language: str | None) -> str | None:
        """What Whisper is told when it hears a short utterance again as a command: the commands'
        words and the names of the devices, in that language."""
        lang = self.matcher.language_for(language)
        words = self.config.stt_prompts.get(lang or "")
        if not words:
            return None
        names = sorted({name for e in self.devices.entities for name in [e.name, *e.aliases]})
        return f"{words} {', '.join(names).capitalize()}." if names else words

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
