"""Conversation memory: budget trimming, the system prompt, barge-in records (word-count tokenizer)."""
from __future__ import annotations

from LLM.conversation import CUT_MARK, Conversation


def words(text: str) -> int:
    return len(text.split())


def conversation(budget: int) -> Conversation:
    return Conversation("You are a very long and important system prompt " * 5, budget, words)


def test_oldest_turns_are_dropped_first_and_the_system_prompt_is_never_cut():
    conv = conversation(budget=20)
    for i in range(6):
        conv.add_user(f"question number {i}")
        conv.add_assistant(f"answer number {i}")
    assert conv.history_tokens() <= 20
    kept = [m["content"] for m in conv.messages()[1:]]
    assert kept[-2:] == ["question number 5", "answer number 5"]
    assert "question number 0" not in kept
    assert conv.messages()[0] == {"role": "system", "content": conv.system_prompt}


def test_history_after_trimming_starts_with_a_question():
    conv = conversation(budget=9)
    conv.add_user("one two")
    conv.add_assistant("three four five six seven")
    conv.add_user("eight nine")
    conv.add_assistant("ten")
    assert conv.turns[0].role == "user"


def test_the_latest_question_stays_even_when_it_alone_exceeds_the_budget():
    conv = conversation(budget=5)
    conv.add_user("short")
    conv.add_assistant("reply")
    conv.add_user("a question far longer than the whole history budget allows")
    assert [t.content for t in conv.turns] == ["a question far longer than the whole history budget allows"]


def test_set_last_reply_keeps_what_was_heard_and_marks_the_cut():
    conv = conversation(budget=100)
    conv.add_user("count")
    conv.add_assistant("one two three four")
    conv.set_last_reply("one two ")
    assert conv.turns[-1].content == f"one two{CUT_MARK}"
    conv.set_last_reply("")
    assert conv.turns[-1].content == CUT_MARK and len(conv.turns) == 2


def test_a_budget_of_zero_answers_each_question_alone():
    conv = conversation(budget=0)
    conv.add_user("first question")
    conv.add_assistant("short answer")
    conv.add_user("second question")
    assert [m["content"] for m in conv.messages()[1:]] == ["second question"]
