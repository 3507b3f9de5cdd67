"""The cache planner and the prompt fitting, on token lists and message lists (no model)."""
from __future__ import annotations

from LLM.backends.prompt_cache import MIN_SHIFT_GAIN, CachePlan, plan
from LLM.backends.prompt_fit import EvalRate, fit, without_oldest_exchange

SYSTEM = list(range(100, 120))
OLD = list(range(500, 540))      # the exchange the history budget drops
KEPT = list(range(600, 700))     # the exchanges that stay
REPLY = list(range(800, 830))    # the last answer as sampled (re-tokenised differently below)


def test_a_dropped_exchange_after_the_system_prompt_is_shifted_out_and_the_rest_reused():
    cached = SYSTEM + OLD + KEPT + REPLY
    prompt = SYSTEM + KEPT + [9, 9] + [7, 7, 7]
    assert plan(cached, prompt) == CachePlan(prefix=len(SYSTEM), dropped=len(OLD), kept=len(KEPT))


def test_a_growing_history_is_plain_prefix_reuse():
    cached = SYSTEM + KEPT
    assert plan(cached, SYSTEM + KEPT + [1, 2, 3]) == CachePlan(prefix=len(SYSTEM + KEPT))


def test_a_short_coincidental_match_is_not_worth_a_shift():
    cached = SYSTEM + OLD + KEPT[: MIN_SHIFT_GAIN - 1] + [1] * 50
    prompt = SYSTEM + KEPT[: MIN_SHIFT_GAIN - 1] + [2] * 50
    assert plan(cached, prompt) == CachePlan(prefix=len(SYSTEM))


def test_another_conversation_in_the_cache_keeps_only_the_common_system_prompt():
    cached = SYSTEM + list(range(2000, 2300))
    assert plan(cached, SYSTEM + KEPT).reused == len(SYSTEM)


def test_an_empty_cache_reuses_nothing():
    assert plan([], SYSTEM + KEPT) == CachePlan(prefix=0)


def _messages(exchanges: int) -> list[dict[str, str]]:
    body = []
    for n in range(exchanges):
        body += [{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"}]
    return [{"role": "system", "content": "s"}] + body + [{"role": "user", "content": "now"}]


def test_the_oldest_question_and_its_answer_leave_together_and_the_question_stays():
    shorter = without_oldest_exchange(_messages(2))
    assert [m["content"] for m in shorter] == ["s", "q1", "a1", "now"]
    assert without_oldest_exchange(_messages(0)) is None


def test_a_history_never_starts_with_an_answer():
    messages = [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"},
                {"role": "assistant", "content": "b"}, {"role": "user", "content": "q"},
                {"role": "assistant", "content": "c"}, {"role": "user", "content": "now"}]
    assert [m["content"] for m in without_oldest_exchange(messages)] == ["s", "q", "c", "now"]


def _cost(messages):  # 100 tokens a message, none cached
    return 100 * len(messages), 100 * len(messages)


def test_an_unmeasured_model_is_never_shortened_on_a_guess():
    fitted = fit(_messages(5), _cost, max_prompt_tokens=10_000, rate=EvalRate(), budget_s=0.1)
    assert fitted.dropped_messages == 0


def test_a_slow_uncached_prompt_is_shortened_to_the_budget():
    rate = EvalRate()
    rate.observe(1000, 2.0)  # 500 tokens/s
    fitted = fit(_messages(5), _cost, max_prompt_tokens=10_000, rate=rate, budget_s=1.0)  # 500 tokens
    assert len(fitted.messages) * 100 <= 500 and fitted.messages[-1]["content"] == "now"
    assert fitted.dropped_messages == len(_messages(5)) - len(fitted.messages)


def test_a_prompt_over_the_context_is_shortened_even_when_fast():
    fitted = fit(_messages(5), _cost, max_prompt_tokens=700, rate=EvalRate(), budget_s=1.0)
    assert len(fitted.messages) * 100 <= 700


def test_the_rate_ignores_tiny_samples_and_follows_the_load():
    rate = EvalRate()
    rate.observe(5, 1.0)
    assert rate.tokens_per_s is None
    rate.observe(100, 1.0)
    rate.observe(100, 2.0)
    assert 50 < rate.tokens_per_s < 100
