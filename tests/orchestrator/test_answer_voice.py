"""One answer, one voice: on the turn path the user hears (TurnRunner, real LLM, real Piper)."""
from __future__ import annotations

import logging
import time

import pytest

from Config import load_config
from Orchestrator.assistant import Assistant
from Orchestrator.turn import FileSink, Stopwatch, TurnResult, TurnRunner
from tests.fakes import CPU
from TTS.piper_native import PiperNativeBackend
from TTS.system_voice import SystemVoiceBackend

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

# SmolLM2-135M reliably answers this prompt in several sentences (bench turn's long replies)
STORYTELLER = "You are a storyteller. Always answer with a long story of at least eight sentences."


@pytest.fixture(scope="module")
async def assistant():
    config = load_config(environ={}, overrides=["llm.temperature=0", f"llm.system_prompt={STORYTELLER}",
                                                 "cache.enabled=false", "tts.backends.piper_cli.enabled=false"])
    luxa = Assistant(config, CPU)
    await luxa.start()
    yield luxa
    await luxa.close()


async def answer(luxa: Assistant, question: str) -> tuple[TurnResult, FileSink]:
    result, sink = TurnResult(question, "en"), FileSink()
    await TurnRunner(luxa).respond(result, sink, Stopwatch(time.perf_counter()))
    return result, sink


async def test_piper_failing_on_the_second_sentence_leaves_the_rest_unspoken_never_in_another_voice(
        assistant, monkeypatch, caplog):
    real = PiperNativeBackend.synthesize
    calls = {"piper": 0, "system": 0}

    async def piper_then_broken(self, request):
        calls["piper"] += 1
        if calls["piper"] >= 2:
            raise RuntimeError("onnxruntime: injected failure")
        return await real(self, request)

    real_system = SystemVoiceBackend.synthesize

    async def counted_system(self, request):
        calls["system"] += 1
        return await real_system(self, request)

    monkeypatch.setattr(PiperNativeBackend, "synthesize", piper_then_broken)
    monkeypatch.setattr(SystemVoiceBackend, "synthesize", counted_system)
    with caplog.at_level(logging.WARNING, logger="TTS.answer"):
        result, sink = await answer(assistant, "Tell me about a dragon.")
    assert len(sink.parts) >= 2, f"the answer had one chunk only: {result.reply!r}"
    assert result.backends["tts"] == "piper_native"
    assert calls["system"] == 0, "another voice spoke part of the answer"
    assert "failed mid-answer" in caplog.text
    assert sink.parts[0][0].samples.std() > 0.01 and all(a.samples.std() < 1e-3 for a, _ in sink.parts[1:])

    nxt, nxt_sink = await answer(assistant, "Tell me about a knight.")  # a new answer may fall back
    assert nxt.backends["tts"] == "system_voice" and calls["system"] > 0
    assert nxt_sink.parts[0][0].samples.std() > 0.01
