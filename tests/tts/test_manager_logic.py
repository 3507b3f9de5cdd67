"""Chain logic of UnifiedTTSManager with scripted backends (the real engines are tested elsewhere)."""
from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest

from Core.audio import Audio
from Core.errors import BackendError, TextInputError
from Core.metrics import REGISTRY
from Core.sentences import split_sentences
from tests.fakes import CPU
from TTS import UnifiedTTSManager
from TTS import manager as manager_module
from TTS.base import TtsBackend

SPEECH = Audio(np.sin(np.linspace(0, 2000, 22050)).astype(np.float32) * 0.3, 22050)


def scripted(name: str, outputs: list, calls: list) -> type[TtsBackend]:
    """A backend class that returns (or raises) the next item of `outputs` at each call."""

    class Scripted(TtsBackend):
        def voice_for(self, request):
            return request.piper_voice if name.startswith("piper") else request.system_voice or request.language

        async def synthesize(self, request):
            calls.append((name, request.text))
            item = outputs.pop(0) if outputs else SPEECH
            if isinstance(item, Exception):
                raise item
            return item

    Scripted.name = name
    return Scripted


@pytest.fixture
def chain(monkeypatch, make_config, clock):
    """build(piper_native=[...], system_voice=[...]) -> (manager, calls)."""

    def build(*overrides: str, **outputs):
        calls: list = []
        for name in ("piper_native", "piper_cli", "system_voice"):
            monkeypatch.setitem(manager_module.BACKENDS, name, scripted(name, outputs.get(name, []), calls))
        config = make_config("tts.backends.piper_cli.enabled=false", "circuit_breaker.failure_threshold=2", *overrides)
        return UnifiedTTSManager(config, CPU, clock=clock), calls

    return build


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("bad,reason", [
    (Audio(np.zeros(0, np.float32), 22050), "empty audio"),
    (Audio(np.full(1000, np.nan, np.float32), 22050), "NaN"),
    (Audio(np.zeros(22050, np.float32), 22050), "silent"),
])
async def test_empty_nan_or_silent_output_is_a_failure_and_the_next_backend_answers(chain, bad, reason):
    tts, calls = chain(piper_native=[bad])
    result = await tts.synthesize("Hello there.")
    assert result.backend == "system_voice" and reason in result.error
    assert [c[0] for c in calls] == ["piper_native", "system_voice"]


async def test_an_answer_never_switches_voice_mid_answer(chain):
    tts, calls = chain(piper_native=[SPEECH, BackendError("crashed"), SPEECH])
    answer = tts.answer()
    results = [await answer.say(s) for s in split_sentences("One sentence. Two sentence. Three sentence.")]
    assert [r.backend for r in results] == ["piper_native", "silent_emergency", "piper_native"]
    assert ("system_voice", "Two sentence.") not in calls


async def test_emergency_silence_is_counted_and_never_cached(chain):
    before = metric("luxa_tts_emergency_total")
    tts, calls = chain(piper_native=[BackendError("a")] * 2, system_voice=[BackendError("b")] * 2)
    first = await tts.synthesize("Nobody can say this.")
    second = await tts.synthesize("Nobody can say this.")
    assert first.backend == second.backend == "silent_emergency" and not second.cached
    assert metric("luxa_tts_emergency_total") == before + 2
    assert len(tts.cache) == 0


async def test_a_repeated_text_is_served_from_the_cache(chain):
    tts, calls = chain()
    first = await tts.synthesize("Cache me.")
    second = await tts.synthesize("Cache me.")
    assert not first.cached and second.cached and second.backend == "piper_native"
    assert np.array_equal(first.audio.samples, second.audio.samples) and len(calls) == 1
    other_speed = await tts.synthesize("Cache me.", speed=1.5)
    assert not other_speed.cached  # speed is part of the key


async def test_a_language_without_piper_voice_skips_piper_without_a_breaker_failure(chain):
    tts, calls = chain()
    result = await tts.synthesize("Bonjour.", language="fr")
    assert result.backend == "system_voice" and result.error is None
    assert calls == [("system_voice", "Bonjour.")]
    assert tts.chain.member("piper_native").breaker._failures == 0


async def test_forced_backend_is_the_only_one_tried(chain):
    tts, calls = chain(system_voice=[BackendError("down")])
    result = await tts.synthesize("Only espeak.", backend="system_voice")
    assert result.backend == "silent_emergency" and calls == [("system_voice", "Only espeak.")]


async def test_bad_requests_get_one_line_errors(chain):
    tts, _ = chain()
    with pytest.raises(BackendError, match="unknown backend 'nope'"):
        await tts.synthesize("Hi.", backend="nope")
    with pytest.raises(BackendError, match="not available: disabled"):
        await tts.synthesize("Hi.", backend="piper_cli")
    with pytest.raises(TextInputError, match="unknown voice"):
        await tts.synthesize("Hi.", voice="no-such-voice")
    with pytest.raises(TextInputError, match="speed"):
        await tts.synthesize("Hi.", speed=40)
    with pytest.raises(TextInputError, match="empty"):
        await tts.synthesize("  ")


@pytest.mark.skipif(importlib.util.find_spec("qwen_tts") is not None, reason="qwen_tts is installed here")
def test_enabled_clone_without_qwen_tts_is_left_out_with_one_warning(chain, caplog):
    with caplog.at_level(logging.WARNING, logger="TTS.manager"):
        tts, _ = chain("tts.backends.qwen_clone.enabled=true")
    warnings = [r for r in caplog.records if "qwen_clone" in r.getMessage()]
    assert len(warnings) == 1 and "qwen_tts" in warnings[0].getMessage()
    assert "qwen_clone" not in [m.name for m in tts.chain.members]
    assert "qwen_tts" in tts.health()["backends"]["qwen_clone"]


async def test_failure_metrics_are_exported_by_backend(chain):
    before = metric("luxa_tts_fallback_total", backend="piper_native")
    tts, _ = chain(piper_native=[BackendError("x")])
    await tts.synthesize("Metrics please.")
    assert metric("luxa_tts_fallback_total", backend="piper_native") == before + 1
    assert metric("luxa_tts_backend_healthy", backend="system_voice") == 1
