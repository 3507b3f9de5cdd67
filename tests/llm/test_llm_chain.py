"""The manager's chain logic with scripted backends: fallback, breakers, timeouts, apology, history."""
from __future__ import annotations

import asyncio
import logging

import pytest

from Config.schema import LlmBackendConfig
from Core.errors import BackendError, ConfigError, ModelMissingError
from LLM import EnhancedLLMManager
from LLM.errors import LlmInputError
from tests.fakes import CPU, FakeClock
from tests.llm.conftest import FakeBackend


def manager_with(config, *backends, clock=None) -> EnhancedLLMManager:
    return EnhancedLLMManager(config, CPU, clock=clock or FakeClock(), backends=list(backends))


async def test_falls_back_to_the_next_backend_when_the_first_raises(fake_config):
    bad, good = FakeBackend("bad", error=BackendError("model crashed")), FakeBackend("good", ["Paris."])
    result = await manager_with(fake_config, bad, good).chat("Capital of France?")
    assert (result.reply, result.backend) == ("Paris.", "good")
    assert bad.calls == 1


async def test_falls_back_when_a_backend_stalls_past_the_first_token_timeout(fake_config):
    stalled, good = FakeBackend("stalled", stall=True), FakeBackend("good", ["Still here."])
    result = await manager_with(fake_config, stalled, good).chat("Hello?")
    assert (result.reply, result.backend) == ("Still here.", "good")
    assert stalled.finished_streams == 1  # the stalled stream was closed, not left running


async def test_breaker_opens_after_repeated_failures_and_the_backend_is_skipped(fake_config):
    bad, good = FakeBackend("bad", error=RuntimeError("boom")), FakeBackend("good")
    manager = manager_with(fake_config, bad, good)
    for _ in range(3):
        assert (await manager.chat("Hi")).backend == "good"
    assert bad.calls == fake_config.circuit_breaker.failure_threshold
    assert manager.health()["backends"]["bad"]["breaker"] == "open"


async def test_every_backend_failing_ends_the_turn_with_the_apology_in_the_users_language(fake_config):
    manager = manager_with(fake_config, FakeBackend("a", error=RuntimeError("x")), FakeBackend("b", stall=True))
    french = await manager.chat("Bonjour ?", language="fr")
    assert (french.reply, french.backend) == (fake_config.llm.apology["fr"], "apology")
    unknown = await manager.chat("Hallo?", language="de-DE")
    assert unknown.reply == fake_config.llm.apology["en"]
    assert manager.conversation.turns[-1].content == fake_config.llm.apology["en"]


async def test_never_switches_backend_once_the_answer_has_started(fake_config):
    broken, good = FakeBackend("broken", ["The capital", " is", " Paris."], fail_after=1), FakeBackend("good")
    result = await manager_with(fake_config, broken, good).chat("Capital?")
    assert (result.reply, result.backend) == ("The capital", "broken")
    assert good.calls == 0


async def test_total_timeout_cuts_an_answer_that_stops_coming(fake_config):
    fake_config.llm.total_timeout_s = 0.5
    slow = FakeBackend("slow", ["First words", " never finished"], stall_after=1)
    result = await manager_with(fake_config, slow).chat("Talk")
    assert (result.reply, result.backend) == ("First words", "slow")
    assert slow.finished_streams == 1


async def test_a_backend_that_only_thinks_out_loud_counts_as_producing_nothing(fake_config):
    thinker = FakeBackend("thinker", ["<think>", "let me see", "</think>", "  "])
    result = await manager_with(fake_config, thinker, FakeBackend("good", ["Yes."])).chat("Is it?")
    assert (result.reply, result.backend) == ("Yes.", "good")


async def test_stream_output_is_cleaned_for_speech(fake_config):
    markdown = FakeBackend("md", ["## An", "swer: **Par", "is** 🇫🇷 is [the capital](http://x.y/z)."])
    pieces = [p async for p in manager_with(fake_config, markdown).stream("Capital?")]
    assert "".join(pieces) == "Answer: Paris is the capital."


async def test_each_turn_sends_the_history_and_records_the_reply(fake_config):
    echo = FakeBackend("echo", script=[["Nice to meet you, Ada."], ["Your name is Ada."]])
    manager = manager_with(fake_config, echo)
    await manager.chat("My name is Ada.")
    await manager.chat("What is my name?")
    sent = echo.requests[-1].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[0]["content"] == fake_config.llm.system_prompt
    assert sent[1]["content"] == "My name is Ada." and sent[2]["content"] == "Nice to meet you, Ada."
    assert manager.conversation.turns[-1].content == "Your name is Ada."


async def test_cancelled_turn_keeps_the_partial_reply_marked_as_cut_in_history(fake_config):
    fake_config.llm.total_timeout_s = 60.0
    # the opening (four words) is held until it is judged, then streams piece by piece; pieces end
    # with a space: the cleaner holds back a word until it is known to be whole
    slow = FakeBackend("slow", ["Once upon a time, ", "there was ", "a king ", "who"], stall_after=3)
    manager = manager_with(fake_config, slow)
    heard: list[str] = []

    async def consume() -> None:
        async for piece in manager.stream("Tell a story"):
            heard.append(piece)

    task = asyncio.create_task(consume())
    while len(heard) < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert manager.conversation.turns[-1].content == "Once upon a time, there was a king…"
    assert slow.finished_streams == 1


async def test_a_turn_cancelled_twice_still_closes_cleanly(fake_config):
    fake_config.llm.total_timeout_s = 60.0
    slow = FakeBackend("slow", ["Once upon a time, in a land ", "far away"], stall_after=1)
    manager = manager_with(fake_config, slow)
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in manager.stream("Tell a story"):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()  # a barge-in racing a shutdown: the clean-up must not find the stream still running
    with pytest.raises(asyncio.CancelledError):
        await task
    assert manager.conversation.turns[-1].content == "Once upon a time, in a land…"
    assert slow.finished_streams == 1


async def test_set_last_reply_after_barge_in_keeps_only_what_was_heard(fake_config):
    manager = manager_with(fake_config, FakeBackend("a", ["One. Two. Three."]))
    await manager.chat("Count")
    manager.conversation.set_last_reply("One.")
    assert manager.conversation.turns[-1].content == "One.…"


@pytest.mark.parametrize("text, reason", [
    ("   ", "empty"),
    ("x" * 5000, "llm.max_input_chars"),
    ("abc\x00\x01def", "binary"),
    ("bad \udcff bytes", "binary"),
])
async def test_bad_input_is_refused_before_any_backend_is_called(fake_config, text, reason):
    backend = FakeBackend("a")
    manager = manager_with(fake_config, backend)
    with pytest.raises(LlmInputError, match=reason):
        manager.stream(text)
    assert backend.calls == 0 and manager.conversation.turns == []


async def test_start_survives_a_backend_that_cannot_load_and_opens_its_breaker(fake_config, caplog):
    missing = FakeBackend("missing", start_error=ModelMissingError("gguf model 'nope' not found"))
    good = FakeBackend("good", ["Fine."])
    manager = manager_with(fake_config, missing, good)
    with caplog.at_level(logging.ERROR, logger="LLM.manager"):
        await manager.start()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "missing" in errors[0] and "not found" in errors[0]
    assert manager.health()["backends"]["missing"]["breaker"] == "open"
    result = await manager.chat("Hello")
    assert result.backend == "good" and missing.calls == 0


def test_configured_backends_follow_priority_and_skip_disabled_ones(fake_config):
    fake_config.llm.backends = {
        "second": LlmBackendConfig(model="smollm2-135m", priority=20),
        "first": LlmBackendConfig(model="smollm2-135m", priority=5),
        "off": LlmBackendConfig(model="smollm2-135m", priority=1, enabled=False),
        "remote": LlmBackendConfig(kind="openai", model="m", url="http://127.0.0.1:9/v1", priority=30),
    }
    manager = EnhancedLLMManager(fake_config, CPU)
    assert [(b.name, b.kind) for b in manager.backends] == [("first", "gguf"), ("second", "gguf"), ("remote", "openai")]


def test_no_enabled_backend_is_a_config_error(fake_config):
    fake_config.llm.backends = {"only": LlmBackendConfig(model="smollm2-135m", enabled=False)}
    with pytest.raises(ConfigError, match="no backend is enabled"):
        EnhancedLLMManager(fake_config, CPU)


def test_openai_backend_without_url_is_a_config_error(fake_config):
    fake_config.llm.backends = {"remote": LlmBackendConfig(kind="openai", model="m")}
    with pytest.raises(ConfigError, match="url is required"):
        EnhancedLLMManager(fake_config, CPU)


@pytest.mark.parametrize("device, expected_layers", [("cuda", -1), ("cpu", 0)])
def test_gpu_layers_are_offloaded_only_when_the_guarded_card_is_in_use(fake_config, monkeypatch, tmp_path,
                                                                       device, expected_layers):
    import llama_cpp

    from Core.gpu import GpuStatus
    from LLM.backends.gguf import GgufBackend

    seen: dict = {}

    class RecordingLlama:
        def __init__(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr(llama_cpp, "Llama", RecordingLlama)
    spec = LlmBackendConfig(model="smollm2-135m", n_gpu_layers=-1)
    backend = GgufBackend("primary", spec, fake_config.llm, fake_config.models.dir, GpuStatus(device, 0))
    backend._new_llama(tmp_path / "model.gguf")
    assert seen["n_gpu_layers"] == expected_layers
    assert seen["n_threads"] == fake_config.llm.threads and seen["n_ctx"] == fake_config.llm.context_tokens


async def test_a_request_s_own_options_bound_its_generation_and_keep_the_configured_stops(fake_config):
    from LLM import GenerationOptions

    backend = FakeBackend("only")
    manager = manager_with(fake_config, backend)
    await manager.chat("Hi", options=GenerationOptions(max_tokens=5, temperature=0.0, stop=("END",)))
    await manager.chat("Hi again")
    bounded, default = backend.requests
    llm = fake_config.llm
    assert (bounded.max_tokens, bounded.temperature, bounded.stop) == (5, 0.0, [*llm.stop, "END"])
    assert (default.max_tokens, default.temperature, default.stop) == (llm.max_tokens, llm.temperature, llm.stop)
