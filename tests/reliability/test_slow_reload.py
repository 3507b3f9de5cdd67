"""A model that loads slower than the chain's timeout still comes back.

Found by the fault matrix on a busy machine: a GGUF backend whose model is missing at start is
loaded again by the breaker's probe, inside the first-token timeout. When the load outlasted
the timeout, the cancelled probe threw the freshly loaded model away, so every later probe
started loading from scratch and a model slower to load than the timeout never recovered.
Piper voices loaded on first use had the same flaw under the TTS timeout.
"""
from __future__ import annotations

import asyncio
import threading

import pytest

from Config import load_config
from Core.breaker import BreakerState
from Core.models import resolve
from LLM import EnhancedLLMManager
from tests.fakes import CPU, FakeClock

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
COOLDOWN_S = 30.0


async def test_a_model_loading_past_the_timeout_is_kept_for_the_next_probe(tmp_path, monkeypatch):
    model = tmp_path / "late.gguf"
    config = load_config(environ={}, overrides=[f"llm.backends.primary.model={model}", "llm.max_tokens=8",
                                                f"circuit_breaker.cooldown_s={COOLDOWN_S}"])
    clock = FakeClock()
    llm = EnhancedLLMManager(config, CPU, clock=clock)
    await llm.start()  # the model is not installed yet: the breaker opens, the apology answers
    member = llm.chain.member("primary")
    assert member.breaker.state is BreakerState.OPEN
    assert (await llm.chat("Hello")).backend == "apology"

    model.symlink_to(resolve("smollm2-135m", "gguf").path)  # the user installs it
    backend, release = member.backend, threading.Event()
    load = backend._load_blocking

    def slow_load(path):  # a big model on a slow disk: longer than the timeout
        release.wait(60)
        return load(path)

    monkeypatch.setattr(backend, "_load_blocking", slow_load)
    monkeypatch.setattr(member, "timeout_s", 0.5)
    clock.advance(COOLDOWN_S)
    assert (await llm.chat("Hello")).backend == "apology"  # the probe timed out while loading
    release.set()
    for _ in range(600):  # the load goes on after the probe gave up
        if backend.loaded is not None:
            break
        await asyncio.sleep(0.1)
    assert backend.loaded is not None, "the model loaded by the timed-out probe was thrown away"

    monkeypatch.setattr(member, "timeout_s", 60.0)  # generous: this is not a latency test
    clock.advance(COOLDOWN_S)
    result = await llm.chat("Hello")
    assert result.backend == "primary" and result.reply
    assert member.breaker.state is BreakerState.CLOSED
    await llm.close()


async def test_a_piper_voice_loading_past_the_timeout_is_kept_for_the_next_request(tmp_path, monkeypatch):
    from TTS import UnifiedTTSManager

    config = load_config(environ={}, overrides=["cache.enabled=false", "tts.backends.piper_cli.enabled=false",
                                                f"circuit_breaker.cooldown_s={COOLDOWN_S}"])
    tts = UnifiedTTSManager(config, CPU, clock=FakeClock())  # not started: the voice loads on first use
    member = tts.chain.member("piper_native")
    backend, release = member.backend, threading.Event()
    load = backend._load

    def slow_load(path):
        release.wait(60)
        return load(path)

    monkeypatch.setattr(backend, "_load", slow_load)
    monkeypatch.setattr(member, "timeout_s", 0.5)
    assert (await tts.synthesize("Hello there.")).backend == "system_voice"  # timed out while loading
    release.set()
    for _ in range(600):
        if backend._voices:
            break
        await asyncio.sleep(0.1)
    assert backend._voices, "the voice loaded by the timed-out request was thrown away"
    monkeypatch.setattr(member, "timeout_s", 60.0)
    result = await tts.synthesize("Hello there.")
    assert result.backend == "piper_native" and result.success
    await tts.close()
