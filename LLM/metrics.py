"""LLM-specific metrics beside the StageMetrics("llm") that the fallback chain exports."""
from __future__ import annotations

from Core.metrics import counter, gauge, histogram

TOKEN_RATE_BUCKETS = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000)


class LlmMetrics:
    def __init__(self) -> None:
        self.first_token = histogram("luxa_llm_first_token_seconds", "time from request to the first spoken piece", ("backend",))
        self.token_rate = histogram("luxa_llm_tokens_per_second", "generated tokens per second after the first",
                                    ("backend",), buckets=TOKEN_RATE_BUCKETS)
        self.tokens = counter("luxa_llm_tokens_total",
                              "prompt tokens (in), those of them the cache did not serve (evaluated), written tokens (out)",
                              ("backend", "direction"))
        self.retries = counter("luxa_llm_retries_total",
                               "answers asked again with the question alone (a recital, a repeat, nothing speakable)",
                               ("reason",))
        self.context = gauge("luxa_llm_context_tokens", "tokens in the model context after the last turn", ("backend",))

    def observe_turn(self, backend: str, first_token_s: float | None, latency_s: float,
                     tokens_in: int, tokens_out: int, context_tokens: int, tokens_evaluated: int = 0) -> None:
        if first_token_s is not None:
            self.first_token.labels(backend).observe(first_token_s)
            decode_s = latency_s - first_token_s
            if tokens_out > 1 and decode_s > 0:
                self.token_rate.labels(backend).observe((tokens_out - 1) / decode_s)
        self.tokens.labels(backend, "in").inc(tokens_in)
        self.tokens.labels(backend, "out").inc(tokens_out)
        self.tokens.labels(backend, "evaluated").inc(tokens_evaluated)
        if context_tokens:
            self.context.labels(backend).set(context_tokens)
