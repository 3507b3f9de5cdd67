"""The three managers, loaded once per process and shared by every mode (voice, text, file, API)."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from Config import LuxaConfig
from Core.gpu import GpuStatus
from LLM import EnhancedLLMManager
from Orchestrator.intents import Intents
from Orchestrator.reply import Replier
from STT import RobustSTTManager
from TTS import UnifiedTTSManager

log = logging.getLogger(__name__)


@dataclass
class Assistant:
    config: LuxaConfig
    gpu: GpuStatus
    stt: RobustSTTManager = field(init=False)
    llm: EnhancedLLMManager = field(init=False)
    tts: UnifiedTTSManager = field(init=False)
    intents: Intents | None = field(init=False)
    replies: Replier = field(init=False)  # how every front door answers a text
    load_seconds: dict[str, float] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic  # drives the circuit breakers (tests move it by hand)

    def __post_init__(self) -> None:
        self.stt = RobustSTTManager(self.config, self.gpu, clock=self.clock)
        self.llm = EnhancedLLMManager(self.config, self.gpu, clock=self.clock)
        self.tts = UnifiedTTSManager(self.config, self.gpu, clock=self.clock)
        self.intents = Intents(self.config) if self.config.intents.enabled else None
        self.replies = Replier(self.llm, self.intents)

    async def start(self) -> None:
        """Load the three stages concurrently: start-up time is the slowest load, not the sum."""

        async def timed(name: str, manager: RobustSTTManager | EnhancedLLMManager | UnifiedTTSManager | Intents) -> None:
            start = time.perf_counter()
            await manager.start()
            self.load_seconds[name] = time.perf_counter() - start

        stages = [timed("stt", self.stt), timed("llm", self.llm), timed("tts", self.tts)]
        if self.intents is not None:
            stages.append(timed("intents", self.intents))
        await asyncio.gather(*stages)
        log.info("models ready: %s", ", ".join(f"{k} {v:.2f} s" for k, v in self.load_seconds.items()))

    async def close(self) -> None:
        closing = [self.stt.close(), self.llm.close(), self.tts.close()]
        if self.intents is not None:
            closing.append(self.intents.close())
        await asyncio.gather(*closing, return_exceptions=True)

    def health(self) -> dict:
        return {"stt": self.stt.health(), "llm": self.llm.health(), "tts": self.tts.health(),
                "load_seconds": self.load_seconds}
