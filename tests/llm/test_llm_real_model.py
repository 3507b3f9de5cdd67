"""The manager against llama.cpp and the real default model, SmolLM2-135M-Instruct."""
from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from Core.metrics import REGISTRY
from Core.models import resolve
from LLM import EnhancedLLMManager
from LLM.backends.gguf import GgufBackend
from LLM.conversation import CUT_MARK, Conversation
from LLM.errors import SwapRefused
from tests.fakes import CPU

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
STORY = "Write a very long story about a dragon and a knight."


def tokens_out(backend: str) -> float:
    return REGISTRY.get_sample_value("luxa_llm_tokens_total", {"backend": backend, "direction": "out"}) or 0.0


async def test_answers_a_factual_question(real_manager):
    result = await real_manager.chat("What is the capital of France?", real_manager.new_conversation())
    assert "paris" in result.reply.lower()
    assert result.backend == "primary" and result.tokens > 0
    assert 0 < result.first_token_s <= result.latency_s


async def test_stream_yields_pieces_while_the_model_is_still_generating(real_manager):
    model = real_manager.backends[0].loaded
    pieces, busy_at_first_piece = [], None
    async for piece in real_manager.stream("Name three colours.", real_manager.new_conversation()):
        if busy_at_first_piece is None:
            busy_at_first_piece = model.busy == 1
        pieces.append(piece)
    assert busy_at_first_piece is True  # the first piece came out before generation ended
    assert len(pieces) >= 2  # the first sentence streams as it comes; each later one whole, once judged (LLM/guard.py)
    assert model.busy == 0


async def test_closing_the_stream_stops_generation_early_and_frees_the_worker(real_manager):
    max_tokens = real_manager.config.llm.max_tokens
    before = tokens_out("primary")
    conversation = real_manager.new_conversation()
    stream = real_manager.stream(STORY, conversation)
    heard = [await anext(stream) for _ in range(3)]
    await stream.aclose()
    generated = tokens_out("primary") - before
    assert 3 <= generated < max_tokens / 3, f"{generated} tokens generated after closing at 3 pieces"
    assert real_manager.backends[0].loaded.busy == 0
    assert conversation.turns[-1].content == "".join(heard).strip() + CUT_MARK
    after = await real_manager.chat("What is the capital of France?", real_manager.new_conversation())
    assert "paris" in after.reply.lower()


async def test_cancelling_the_consumer_task_stops_generation_and_keeps_the_partial_reply(real_manager):
    conversation = real_manager.new_conversation()
    got_two = asyncio.Event()
    heard: list[str] = []

    async def speak() -> None:
        async for piece in real_manager.stream(STORY, conversation):
            heard.append(piece)
            if len(heard) == 2:
                got_two.set()

    before = tokens_out("primary")
    task = asyncio.create_task(speak())
    await got_two.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tokens_out("primary") - before < real_manager.config.llm.max_tokens / 3
    assert real_manager.backends[0].loaded.busy == 0
    assert conversation.turns[-1].content.endswith(CUT_MARK)


async def test_history_budget_is_measured_with_the_models_tokenizer(real_manager):
    llama = real_manager.backends[0].loaded.llama
    text = "Bonjour, je m'appelle Ada et j'habite à Lyon."
    assert real_manager.count_tokens(text) == len(llama.tokenize(text.encode(), add_bos=False, special=True))
    conversation = Conversation(real_manager.config.llm.system_prompt, 60, real_manager.count_tokens)
    for i in range(8):
        conversation.add_user(f"This is question number {i}, about the weather in Paris.")
        conversation.add_assistant(f"This is answer number {i}: it is sunny today in Paris.")
    assert conversation.history_tokens() <= 60
    assert conversation.turns[-1].content.startswith("This is answer number 7")
    assert all("number 0" not in t.content for t in conversation.turns)
    assert conversation.messages()[0]["content"] == real_manager.config.llm.system_prompt
    reply = await real_manager.chat("And tomorrow?", conversation)
    assert reply.reply and conversation.history_tokens() <= 60


async def test_missing_and_corrupt_models_at_start_up_fall_through_to_the_next_model(real_manager, llm_config,
                                                                                    tmp_path, caplog):
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    spec = llm_config.llm.backends["primary"]
    broken = [
        GgufBackend("missing", spec.model_copy(update={"model": "no-such-model"}), llm_config.llm,
                    llm_config.models.dir, CPU),
        GgufBackend("corrupt", spec.model_copy(update={"model": str(corrupt)}), llm_config.llm,
                    llm_config.models.dir, CPU),
    ]
    # The working model is the session's, already loaded: the chain must reach it after the two failures.
    manager = EnhancedLLMManager(llm_config, CPU, backends=[*broken, real_manager.backends[0]])
    with caplog.at_level(logging.ERROR, logger="LLM.manager"):
        await manager.start()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2 and "no-such-model" in errors[0] and "corrupt.gguf" in errors[1]
    health = manager.health()["backends"]
    assert health["missing"]["breaker"] == health["corrupt"]["breaker"] == "open"
    assert not health["corrupt"]["loaded"] and health["corrupt"]["error"]
    result = await manager.chat("What is the capital of France?")
    assert result.backend == "primary" and "paris" in result.reply.lower()


async def test_hot_swap_keeps_answering_then_serves_the_second_model(real_manager, tmp_path, monkeypatch):
    backend = real_manager.backends[0]
    first = backend.loaded
    second_file = tmp_path / "second-model.gguf"
    second_file.symlink_to(resolve("smollm2-135m", "gguf").path)
    release, loading = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    load = backend._load_blocking

    def held_load(path):  # the second model stays "loading" until the test has chatted meanwhile
        loop.call_soon_threadsafe(loading.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result()
        return load(path)

    monkeypatch.setattr(backend, "_load_blocking", held_load)
    swap = asyncio.create_task(real_manager.swap("primary", str(second_file)))
    try:
        await loading.wait()
        during = await real_manager.chat("What is the capital of France?", real_manager.new_conversation())
        assert "paris" in during.reply.lower() and not swap.done()
        assert backend.loaded is first
        release.set()
        await swap
        assert backend.loaded.path == second_file and first.freed
        after = await real_manager.chat("What is the capital of France?", real_manager.new_conversation())
        assert "paris" in after.reply.lower()
        assert real_manager.health()["backends"]["primary"]["path"] == str(second_file)
    finally:
        release.set()
        monkeypatch.undo()
        await real_manager.swap("primary", "smollm2-135m")


async def test_swap_is_refused_when_memory_is_short_and_the_current_model_keeps_serving(real_manager, monkeypatch):
    loaded = real_manager.backends[0].loaded
    monkeypatch.setattr("LLM.backends.gguf.psutil.virtual_memory", lambda: SimpleNamespace(available=10 * 2**20))
    with pytest.raises(SwapRefused, match="not enough memory"):
        await real_manager.swap("primary", "smollm2-135m")
    assert real_manager.backends[0].loaded is loaded and not loaded.freed


async def test_configured_chat_template_overrides_the_gguf_metadata(llm_config):
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "<|im_start|>assistant\n"
    )
    config = llm_config.model_copy(deep=True)
    config.llm.chat_template = template
    manager = EnhancedLLMManager(config, CPU)
    await manager.start()
    try:
        assert manager.backends[0].loaded.formatter.template == template
        result = await manager.chat("What is the capital of France?")
        assert result.backend == "primary" and "paris" in result.reply.lower()
    finally:
        await manager.close()


async def test_a_turn_exports_first_token_rate_tokens_and_context_metrics(real_manager):
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"backend": "primary", **labels}) or 0.0

    firsts, rates = value("luxa_llm_first_token_seconds_count"), value("luxa_llm_tokens_per_second_count")
    tokens_in, requests = value("luxa_llm_tokens_total", direction="in"), value("luxa_llm_requests_total", outcome="ok")
    result = await real_manager.chat("Name three colours.", real_manager.new_conversation())
    assert value("luxa_llm_first_token_seconds_count") == firsts + 1
    assert value("luxa_llm_tokens_per_second_count") == rates + (1 if result.tokens > 1 else 0)
    assert value("luxa_llm_tokens_total", direction="in") > tokens_in
    assert value("luxa_llm_requests_total", outcome="ok") == requests + 1
    assert value("luxa_llm_context_tokens") > result.tokens
    assert value("luxa_llm_breaker_state") == 0


async def test_start_evaluates_the_system_prompt_so_the_first_turn_reuses_it(llm_config):
    manager = EnhancedLLMManager(llm_config, CPU)
    await manager.start()
    try:
        llama = manager.backends[0].loaded.llama
        cached = list(llama.input_ids[: llama.n_tokens])
        system_tokens = llama.tokenize(llm_config.llm.system_prompt.encode(), add_bos=False)
        # the system prompt's tokens sit inside the evaluated prefix, before any user text
        text = llama.detokenize(cached).decode("utf-8", "replace")
        assert llm_config.llm.system_prompt in text and len(cached) > len(system_tokens)
        assert manager.conversation.turns == []  # priming leaves no trace in the conversation
        result = await manager.chat("What is the capital of France?", manager.new_conversation())
        assert "paris" in result.reply.lower()
        after = list(llama.input_ids[: llama.n_tokens])
        shared = next((i for i, (a, b) in enumerate(zip(cached, after)) if a != b), len(cached))
        assert shared >= len(system_tokens)  # the turn kept the primed prefix instead of re-evaluating it
    finally:
        await manager.close()


QUESTIONS = ["Tell me a fun fact about cats.", "How do I boil an egg?", "Why is the sky blue?",
             "Give me a tip for sleeping better."]


def evaluated_tokens() -> float:
    return REGISTRY.get_sample_value("luxa_llm_tokens_total", {"backend": "primary", "direction": "evaluated"}) or 0.0


async def test_a_session_past_its_history_budget_evaluates_only_the_new_turn(real_manager):
    """Once the oldest exchanges are dropped every turn, the cache is shifted, not re-evaluated
    (before: the whole history again each time, 8-9 s to the first token at 1000 tokens)."""
    conversation = Conversation(real_manager.config.llm.system_prompt, 300, real_manager.count_tokens)
    per_turn, trimmed_from = [], None
    for n in range(14):
        before = evaluated_tokens()
        await real_manager.chat(QUESTIONS[n % len(QUESTIONS)], conversation)
        per_turn.append(evaluated_tokens() - before)
        if trimmed_from is None and len(conversation.turns) < 2 * (n + 1):
            trimmed_from = n
    assert trimmed_from is not None and trimmed_from < 10, "the history budget never trimmed the session"
    history = conversation.history_tokens()
    after = per_turn[trimmed_from + 1:]
    assert after and max(after) < history / 2, f"evaluated per turn after trimming: {after} (history {history})"
    answer = await real_manager.chat("What is the capital of France?", conversation)
    assert "paris" in answer.reply.lower(), answer.reply


async def test_a_cold_cache_answers_from_a_shorter_history_within_the_budget(real_manager, monkeypatch, caplog):
    """Another conversation used the model in between: re-evaluating the whole history would
    pass the budget, so the turn is answered from the question and fewer old exchanges."""
    conversation = real_manager.new_conversation()
    for question in QUESTIONS:
        await real_manager.chat(question, conversation)
    await real_manager.chat("Name three colours.", real_manager.new_conversation())
    assert real_manager.backends[0].loaded.rate.tokens_per_s, "no evaluation speed measured yet"
    monkeypatch.setattr(real_manager.config.llm, "prompt_eval_budget_s", 0.05)
    before = evaluated_tokens()
    with caplog.at_level(logging.INFO, logger="LLM.backends.gguf"):
        answer = await real_manager.chat("What is the capital of France?", conversation)
    assert "shorter history" in caplog.text
    assert evaluated_tokens() - before < conversation.history_tokens() / 2
    assert "paris" in answer.reply.lower(), answer.reply
