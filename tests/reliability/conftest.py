"""Reliability fixtures, and the figures (counts, resources) printed at the end of the run.

The figures are the point of these tests, so they go to the terminal summary: visible in a
plain `pytest` run, without -s.
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPORTS: list[tuple[str, str]] = []


def pytest_terminal_summary(terminalreporter) -> None:
    if not REPORTS:
        return
    terminalreporter.section("reliability figures")
    for title, text in REPORTS:
        terminalreporter.write_line(f"--- {title}")
        for line in text.splitlines():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def report():
    """report(title, text): keep figures for the terminal summary (and print them for -s runs)."""

    def add(title: str, text: str) -> None:
        REPORTS.append((title, text))
        print(f"\n--- {title}\n{text}")

    return add


@pytest.fixture(scope="session")
def questions(corpus_dir: Path) -> list[Path]:
    """The English spoken commands of the corpus (SmolLM2 and tiny.en are English-only)."""
    folder = corpus_dir / "commands"
    return [folder / "turn_on_the_living_room_lamp.wav", folder / "living_room_light_en.wav"]
