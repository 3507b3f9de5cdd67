"""Word error rate with the corpus's normalisation, shared by the tests and the benchmark.

jiwer is a dev dependency, imported only when a score is asked for.
"""
from __future__ import annotations

from STT.filters import normalise


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus-level WER (errors over all reference words) after lower-casing, stripping
    punctuation and collapsing spaces on both sides."""
    import jiwer

    refs = [normalise(r) for r in references]
    hyps = [normalise(h) for h in hypotheses]
    return float(jiwer.wer(refs, hyps))
