"""Primitives every stage shares: audio, circuit breaker, fallback chain, metrics, GPU guard."""
