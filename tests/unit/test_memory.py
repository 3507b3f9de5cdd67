"""The malloc arena limit is set once at start-up, and never against the user's own setting."""
from __future__ import annotations

import sys

import pytest

from Core.memory import limit_malloc_arenas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_arena_limit_is_set_through_glibc(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas(2) is True


def test_zero_keeps_glibc_default_and_an_explicit_environment_wins(monkeypatch):
    assert limit_malloc_arenas(0) is False
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False
