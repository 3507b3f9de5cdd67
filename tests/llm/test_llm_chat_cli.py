"""`run_assistant.py chat` as a user runs it: a subprocess with the real default model."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration
GREEDY = ["--set", "llm.temperature=0", "--set", "llm.threads=1"]


def test_chat_json_reports_the_reply_timings_and_backend(run_cli):
    out = run_cli("chat", "What is the capital of France?", "--json", *GREEDY)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {"reply", "latency_ms", "first_token_ms", "backend"} <= set(report)
    assert "paris" in report["reply"].lower() and report["backend"] == "primary"
    assert 0 < report["first_token_ms"] <= report["latency_ms"]


def test_chat_on_stdin_answers_every_line_in_one_conversation(run_cli):
    out = run_cli("chat", "--json", *GREEDY, input="Hello!\n\nWhat is the capital of France?\n")
    assert out.returncode == 0, out.stderr
    replies = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(replies) == 2 and all(r["reply"] and r["backend"] == "primary" for r in replies)
    assert "paris" in replies[1]["reply"].lower()


@pytest.mark.parametrize("text, reason", [
    ("  ", "chat input is empty"),
    ("x" * 5000, "llm.max_input_chars=4000"),
    ("ab\x01\x02cd", "looks binary"),
])
def test_chat_refuses_bad_input_with_one_line_and_a_non_zero_exit(run_cli, text, reason):
    out = run_cli("chat", text)
    last_line = out.stderr.strip().splitlines()[-1]
    assert out.returncode != 0 and out.stdout == ""
    assert last_line.startswith("luxa: error: chat input") and reason in last_line
    assert "Traceback" not in out.stderr
