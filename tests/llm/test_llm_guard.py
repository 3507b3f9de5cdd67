"""The answer guard (LLM/guard.py) through the manager: an unusable opening is asked again with
the question alone, once; a spoken answer stops after llm.max_sentences sentences."""
from __future__ import annotations

import datetime as dt

from LLM import EnhancedLLMManager
from tests.fakes import CPU, FakeClock
from tests.llm.conftest import FakeBackend


def _manager(config, backend) -> EnhancedLLMManager:
    return EnhancedLLMManager(config, CPU, clock=FakeClock(), backends=[backend])


async def test_a_reply_that_repeats_an_earlier_one_is_asked_again_without_the_history(fake_config):
    same = ["The Pacific is the largest ocean on Earth."]
    model = FakeBackend("m", script=[same, same, ["The lamp is in the living room."]])
    manager = _manager(fake_config, model)
    await manager.chat("What is the largest ocean?")
    result = await manager.chat("Where is the lamp?")
    assert result.reply == "The lamp is in the living room."
    assert [len(r.messages) for r in model.requests] == [2, 4, 2]  # the retry sends the question alone
    # and the conversation goes on from that exchange, as the model's cache does
    assert [t.content for t in manager.conversation.turns] == ["Where is the lamp?", "The lamp is in the living room."]


async def test_asking_the_same_question_twice_may_get_the_same_answer(fake_config):
    model = FakeBackend("m", ["Paris is the capital of France."])
    manager = _manager(fake_config, model)
    for _ in range(2):
        assert (await manager.chat("What is the capital of France?")).reply == "Paris is the capital of France."
    assert model.calls == 2


async def test_a_recited_system_prompt_is_never_the_answer(fake_config):
    recital = [fake_config.llm.system_prompt]
    model = FakeBackend("m", script=[recital, ["I can answer questions and switch your lights."]])
    result = await _manager(fake_config, model).chat("Who are you?")
    assert result.reply == "I can answer questions and switch your lights." and model.calls == 2


async def test_a_reply_with_nothing_speakable_is_asked_again_then_apologised_for(fake_config):
    model = FakeBackend("m", ["..."])
    result = await _manager(fake_config, model).chat("of others.", language="en")
    assert model.calls == 2 and result.backend == "apology" and result.reply == fake_config.llm.apology["en"]


async def test_a_spoken_answer_stops_after_two_sentences(fake_config):
    model = FakeBackend("m", ["One. Two", " is here! Three", " should not be said."])
    result = await _manager(fake_config, model).chat("Count.")
    assert result.reply == "One. Two is here!"


async def test_a_question_about_the_date_gets_it_in_its_own_message_in_its_language(fake_config):
    model = FakeBackend("m", script=[["C'est la saison des marrons."], ["Je vais bien, merci."]])
    manager = _manager(fake_config, model)
    await manager.chat("Quelle saison sommes-nous ?", language="fr")
    await manager.chat("Comment vas-tu ?", language="fr")
    about_date, other = model.requests
    # the system prompt never changes (the model's cache keeps it); the date rides on that question only
    assert about_date.messages[0]["content"] == other.messages[0]["content"] == fake_config.llm.system_prompts["fr"]
    asked = about_date.messages[-1]["content"]
    assert "Nous sommes le" in asked and str(dt.date.today().year) in asked and asked.endswith("Quelle saison sommes-nous ?")
    assert other.messages[1]["content"] == "Quelle saison sommes-nous ?"  # the history keeps the question as asked


async def test_an_answer_in_another_language_than_the_question_is_asked_again(fake_config):
    model = FakeBackend("m", script=[["Le Grand Paris, la capitale de la France."], ["The capital of France is Paris."]])
    result = await _manager(fake_config, model).chat("What is the capital of France?", language="en")
    assert result.reply == "The capital of France is Paris." and model.calls == 2


async def test_a_later_sentence_that_repeats_an_earlier_reply_ends_the_answer(fake_config):
    model = FakeBackend("m", script=[
        ["One famous painter is Salvador Dali. He was known for his surrealist art."],
        ["Dali painted the melting clocks.", " He was known for his", " surrealist art and his dreams."],
    ])
    manager = _manager(fake_config, model)
    await manager.chat("Name a famous painter.")
    result = await manager.chat("What did he paint?")
    assert result.reply == "Dali painted the melting clocks."
    assert model.calls == 2  # the opening was new: no retry, the answer just stops


def test_later_repeats_passes_new_sentences_through_piece_by_piece():
    from LLM.guard import LaterSentences

    later = LaterSentences(["The Pacific is the largest ocean."])
    text = "It is about eleven kilometres deep. The Mariana Trench is the deepest point."
    out = "".join(later.feed(text[i:i + 4]) for i in range(0, len(text), 4)) + later.flush()
    assert out == text and not later.done


async def test_a_later_sentence_that_reads_the_system_prompt_back_ends_the_answer(fake_config):
    # bench answers, "Thank you." -> 'I'm glad to help. I'll just add a little more context: "You're a helpful voice assistant."'
    words = fake_config.llm.system_prompt.rstrip(".").split()[:5]
    model = FakeBackend("m", ["I'm glad to help.", " I'll just add a little more context:",
                              f' "{" ".join(words)}."'])
    result = await _manager(fake_config, model).chat("Thank you.")
    assert result.reply == "I'm glad to help." and model.calls == 1


def test_a_later_sentence_with_a_few_words_of_the_prompt_out_of_order_is_said():
    from LLM.guard import LaterSentences

    later = LaterSentences([], "You are a helpful voice assistant. Answer briefly, in plain text.")
    text = "Paris is the capital. A voice is helpful, you are told, in plain words."
    assert later.feed(text) + later.flush() == text and not later.done
