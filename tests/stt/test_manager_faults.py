"""Fallback logic of RobustSTTManager with scripted backends (the real engine is in test_whisper_real)."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from Config.schema import CircuitBreakerConfig, LuxaConfig, SttBackendConfig, SttConfig
from Core.audio import STT_RATE, Audio
from Core.breaker import BreakerState
from Core.errors import AudioInputError, BackendError, ConfigError
from Core.metrics import REGISTRY
from STT import Decoded, RobustSTTManager
from STT.transcript import DecodeOptions
from STT.whisper_backend import decode_options, is_cuda_failure, resolve_device
from tests.fakes import CPU

THRESHOLD, COOLDOWN_S, TIMEOUT_S = 2, 10.0, 0.2
SPEECH = Audio(np.random.default_rng(3).normal(0, 0.1, STT_RATE).astype(np.float32), STT_RATE)


class ScriptedBackend:
    """Does what `behaviour` says: ok, raise, hang, garbage, credits, fail_load."""

    def __init__(self, name: str, behaviour: str = "ok"):
        self.name, self.behaviour, self.calls, self.loaded = name, behaviour, 0, False
        self.multilingual = True

    async def load(self) -> None:
        if self.behaviour == "fail_load":
            raise BackendError(f"{self.name}: model file missing")
        self.loaded = True

    async def warm_up(self) -> None:
        return None

    async def transcribe(self, audio: Audio, language: str | None, options=None) -> Decoded:
        self.calls += 1
        if self.behaviour in ("raise", "fail_load"):
            raise RuntimeError("decoder crashed")
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        text = {"garbage": "the " * 30, "credits": "Thanks for watching!"}.get(self.behaviour, f"heard by {self.name}")
        return Decoded(text, language or "en", 0.9)

    async def close(self) -> None:
        self.loaded = False


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config(**stt_overrides) -> LuxaConfig:
    backends = {
        "secondary": SttBackendConfig(model="fake-b", priority=20, timeout_s=TIMEOUT_S),
        "primary": SttBackendConfig(model="fake-a", priority=10, timeout_s=TIMEOUT_S),
    }
    return LuxaConfig(stt=SttConfig(backends=backends, **stt_overrides),
                      circuit_breaker=CircuitBreakerConfig(failure_threshold=THRESHOLD, cooldown_s=COOLDOWN_S))


async def manager_with(primary: str, secondary: str = "ok", clock=None, **stt_overrides):
    fakes = {"primary": ScriptedBackend("primary", primary), "secondary": ScriptedBackend("secondary", secondary)}
    manager = RobustSTTManager(config(**stt_overrides), CPU, backends=fakes, clock=clock or Clock())
    await manager.start()
    return manager, fakes


@pytest.mark.parametrize("failure", ["raise", "hang", "garbage"])
async def test_next_backend_answers_when_the_first_fails(failure):
    manager, fakes = await manager_with(failure)
    result = await manager.transcribe(SPEECH)
    assert (result.backend, result.text) == ("secondary", "heard by secondary")
    assert fakes["primary"].calls == 1


async def test_backends_are_tried_by_priority_not_by_config_order():
    manager, _ = await manager_with("ok")
    assert [m.name for m in manager.chain.members] == ["primary", "secondary"]
    assert (await manager.transcribe(SPEECH)).backend == "primary"


async def test_subtitle_credits_end_as_empty_text_without_failing_the_backend():
    manager, fakes = await manager_with("credits")
    result = await manager.transcribe(SPEECH)
    assert (result.text, result.backend, result.heard) == ("", "primary", False)
    assert manager.chain.member("primary").breaker.state is BreakerState.CLOSED
    assert fakes["secondary"].calls == 0


async def test_every_backend_failing_means_nothing_heard():
    manager, _ = await manager_with("raise", "hang")
    result = await manager.transcribe(SPEECH, language="fr")
    assert (result.text, result.backend, result.language) == ("", "none", "fr")
    assert result.duration_s == pytest.approx(1.0)


async def test_breaker_opens_after_threshold_and_recovers_after_cooldown():
    clock = Clock()
    manager, fakes = await manager_with("raise", clock=clock)
    primary = fakes["primary"]
    for _ in range(THRESHOLD):
        assert (await manager.transcribe(SPEECH)).backend == "secondary"
    breaker = manager.chain.member("primary").breaker
    assert breaker.state is BreakerState.OPEN
    await manager.transcribe(SPEECH)
    assert primary.calls == THRESHOLD, "an open breaker must keep requests away from the backend"
    primary.behaviour = "ok"
    clock.now += COOLDOWN_S - 0.1
    assert (await manager.transcribe(SPEECH)).backend == "secondary"
    clock.now += 0.2
    assert (await manager.transcribe(SPEECH)).backend == "primary"
    assert breaker.state is BreakerState.CLOSED
    assert manager.health()["primary"]["state"] == "closed"


async def test_a_model_that_fails_to_load_is_skipped_not_fatal():
    manager, fakes = await manager_with("fail_load")
    assert manager.health()["primary"] == {"state": "open", "loaded": False, "model": "fake-a"}
    assert (await manager.transcribe(SPEECH)).backend == "secondary"
    assert fakes["primary"].calls == 0


async def test_lazy_load_leaves_models_unloaded_at_start():
    manager, _ = await manager_with("ok", load="lazy")
    assert not any(h["loaded"] for h in manager.health().values())


async def test_unusable_audio_is_refused_before_any_backend_runs():
    manager, fakes = await manager_with("ok")
    with pytest.raises(AudioInputError, match="silent"):
        await manager.transcribe(Audio(np.zeros(STT_RATE, np.float32), STT_RATE))
    assert fakes["primary"].calls == fakes["secondary"].calls == 0


async def test_the_language_argument_overrides_the_config_and_unknown_codes_are_refused():
    manager, _ = await manager_with("ok", language="en")
    assert (await manager.transcribe(SPEECH)).language == "en"
    assert (await manager.transcribe(SPEECH, language="FR")).language == "fr"
    with pytest.raises(ConfigError, match="unknown language 'xx'"):
        await manager.transcribe(SPEECH, language="xx")


async def test_metrics_count_outcomes_per_backend_and_observe_the_real_time_factor():
    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before_error = sample("luxa_stt_requests_total", backend="primary", outcome="error")
    before_ok = sample("luxa_stt_requests_total", backend="secondary", outcome="ok")
    before_rtf = sample("luxa_stt_rtf_count", backend="secondary")
    manager, _ = await manager_with("raise")
    await manager.transcribe(SPEECH)
    assert sample("luxa_stt_requests_total", backend="primary", outcome="error") == before_error + 1
    assert sample("luxa_stt_requests_total", backend="secondary", outcome="ok") == before_ok + 1
    assert sample("luxa_stt_rtf_count", backend="secondary") == before_rtf + 1


def test_a_config_with_no_enabled_backend_is_refused():
    cfg = LuxaConfig(stt=SttConfig(backends={"only": SttBackendConfig(model="x", enabled=False)}))
    with pytest.raises(ConfigError, match="no backend is enabled"):
        RobustSTTManager(cfg, CPU)


def test_decoding_options_come_from_the_config_and_never_condition_on_previous_text():
    stt = SttConfig(beam_size=3, temperatures=[0.0, 0.5], no_speech_threshold=0.7)
    options = decode_options(stt)
    assert options["condition_on_previous_text"] is False
    assert (options["beam_size"], options["temperature"], options["no_speech_threshold"]) == (3, [0.0, 0.5], 0.7)
    assert options["compression_ratio_threshold"] == stt.compression_ratio_threshold
    assert options["log_prob_threshold"] == stt.log_prob_threshold


def test_device_auto_follows_the_gpu_decision_and_cuda_without_a_gpu_is_refused():
    assert resolve_device("auto", CPU) == "cpu"
    with pytest.raises(BackendError, match="no usable GPU"):
        resolve_device("cuda", CPU)


@pytest.mark.parametrize("message, cuda", [
    ("CUDA failed with error out of memory", True),
    ("cuBLAS failed with status CUBLAS_STATUS_ALLOC_FAILED", True),
    ("unsupported audio shape", False),
])
def test_cuda_failures_are_recognised_so_the_model_can_be_freed(message, cuda):
    assert is_cuda_failure(RuntimeError(message)) is cuda


async def test_translation_skips_an_english_only_backend_without_counting_it_a_failure():
    manager, fakes = await manager_with("ok")
    fakes["primary"].multilingual = False
    result = await manager.transcribe(SPEECH, options=DecodeOptions(task="translate"))
    assert result.backend == "secondary" and fakes["primary"].calls == 0
    assert manager.chain.member("primary").breaker.state is BreakerState.CLOSED
    with pytest.raises(ConfigError, match="English-only"):
        await manager.transcribe(SPEECH, options=DecodeOptions(task="translate"), backend="primary")
