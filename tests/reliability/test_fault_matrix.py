"""Fault matrix: every backend of every stage fails in every applicable way during one live session.

One Assistant stays up for the whole module, as a daemon would. For each cell the backends
ahead of the faulty one are held down too (so the faulty one is really the one serving), the
fault lasts `failure_threshold` turns (its breaker must open), then it is lifted, the cooldown
passes on the breakers' clock, and the next turn must be answered by the repaired backend.

Short form: ten cells covering every backend and every kind of fault (all 30 cells took 9.5
minutes on 2 busy cores). STT cells run whole turns from the recorded question, fed as fast as
the loop takes it; LLM and TTS cells run text turns, the TurnRunner path the voice loop takes
after STT (the `--text` mode), because a voice turn costs seconds of STT on 2 shared cores.
Long form (--long): all 30 cells, each turn a real-time voice turn.
"""
from __future__ import annotations

import collections
import functools
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from Config import load_config
from Core.audio import load_audio
from Core.breaker import BreakerState
from Core.errors import AudioInputError
from Orchestrator import audio_io
from Orchestrator.commands.turn import one_turn
from Orchestrator.turn import FileSink, Stopwatch, TurnResult, TurnRunner
from tests.fakes import CPU, FakeClock
from tests.reliability.faults import Cell, Injector, Workspace
from tests.reliability.helpers import ClockedAssistant, run_with_deadline

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

THRESHOLD = 2
COOLDOWN_S = 30.0
TURN_DEADLINE_S = 180.0  # hang detection for a whole turn, far above any real one
QUESTION_TEXT = "Turn on the living room lamp."


CHAIN_ORDER = ["whisper_base", "tiny_en", "primary", "second", "piper_native", "piper_cli", "system_voice"]
FAULT_ORDER = ["raise", "hang", "crash", "corrupt", "missing"]
# The short form: every backend at least once and every kind of fault at least once, the real
# failures first (files, processes); the long form runs every cell.
SHORT_FORM = {
    ("whisper_base", "corrupt"), ("tiny_en", "missing"), ("primary", "hang"), ("second", "corrupt"),
    ("piper_native", "raise"), ("piper_native", "missing"), ("piper_cli", "crash"), ("piper_cli", "corrupt"),
    ("system_voice", "hang"), ("system_voice", "corrupt"),
}


def _cells() -> list[Cell]:
    cells = []
    for fault in ("raise", "hang", "corrupt", "missing"):
        cells.append(Cell("stt", "whisper_base", fault, (), "tiny_en"))
        cells.append(Cell("stt", "tiny_en", fault, ("whisper_base",), "none"))  # no STT left: stay quiet
        cells.append(Cell("llm", "primary", fault, (), "second"))
        cells.append(Cell("llm", "second", fault, ("primary",), "apology"))
        # piper_native's voice file is piper_cli's too: with it gone both fail, espeak-ng answers
        cells.append(Cell("tts", "piper_native", fault, (), "system_voice" if fault == "missing" else "piper_cli"))
    for fault in ("raise", "hang", "crash", "corrupt", "missing"):
        cells.append(Cell("tts", "piper_cli", fault, ("piper_native",), "system_voice"))
        cells.append(Cell("tts", "system_voice", fault, ("piper_native", "piper_cli"), "silent_emergency"))
    return sorted(cells, key=lambda c: (CHAIN_ORDER.index(c.backend), FAULT_ORDER.index(c.fault)))


def _params() -> list:
    def name(c: Cell) -> str:
        return f"{c.stage}-{c.backend}-{c.fault}"

    short = [pytest.param(c, False, id=f"short-{name(c)}") for c in CELLS if (c.backend, c.fault) in SHORT_FORM]
    voice = [pytest.param(c, True, id=f"voice-{name(c)}", marks=pytest.mark.long) for c in CELLS]
    return short + voice


CELLS = _cells()


@dataclass
class Row:
    cell: Cell
    turns: int = 0
    answered: int = 0
    served_by: collections.Counter = field(default_factory=collections.Counter)
    breaker_after_fault: str = ""
    recovered_by: str = ""
    breaker_after_recovery: str = ""


ROWS: list[Row] = []


@dataclass
class Session:
    assistant: ClockedAssistant
    clock: FakeClock
    injector: Injector
    question: object  # Audio


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session(tmp_path_factory, questions, report):
    work = Workspace(tmp_path_factory.mktemp("faults"))
    config = load_config(environ={}, overrides=[
        *work.overrides(),
        f"circuit_breaker.failure_threshold={THRESHOLD}", f"circuit_breaker.cooldown_s={COOLDOWN_S}",
        "cache.enabled=false",  # a cache hit would answer without the faulty backend
        "intents.enabled=false",  # a command handler would answer the spoken command without the LLM's chain
        "llm.max_tokens=24",  # short replies: the matrix is about who answers, not what
        # generous timeouts (hang cells lower the faulty member's own): on 2 busy cores a model
        # reloaded by a recovery probe can take seconds, and piper_cli loads its voice per request
        "llm.first_token_timeout_s=60", "tts.backends.piper_native.timeout_s=60",
        "tts.backends.piper_cli.timeout_s=120",
    ])
    clock = FakeClock()
    assistant = ClockedAssistant(config, CPU, clock=clock)
    await assistant.start()
    for stage in ("stt", "llm", "tts"):  # everything must start healthy, or the matrix means nothing
        assert all(s == "closed" for s in getattr(assistant, stage).chain.health().values()), assistant.health()
    yield Session(assistant, clock, Injector(assistant, work), load_audio(questions[0]))
    await assistant.close()
    work.restore_all()
    report("fault matrix", _table(ROWS))


async def _turn(s: Session, stage: str, realtime: bool) -> tuple[bool, str]:
    """(answered, who served `stage`) for one turn of the live session."""
    if stage != "stt" and not realtime:
        result = TurnResult(QUESTION_TEXT, "en", backends={"stt": "text"})
        await run_with_deadline(TurnRunner(s.assistant).respond(result, FileSink(), Stopwatch(time.perf_counter())),
                                TURN_DEADLINE_S, "a text turn")
        return bool(result.reply), result.backends.get(stage, "?")
    try:
        with pytest.MonkeyPatch.context() as mp:
            if not realtime:  # the same voice loop, fed as fast as it reads
                mp.setattr(audio_io, "FileMicrophone", functools.partial(audio_io.FileMicrophone, realtime=False))
            result, _ = await run_with_deadline(one_turn(s.assistant, s.question), TURN_DEADLINE_S, "a voice turn")
    except AudioInputError:  # "no speech heard": STT had nothing, the assistant stayed quiet
        return False, "none"
    return bool(result.reply), result.backends.get(stage, "?")


def _reset(s: Session) -> None:
    """Each cell starts from a healthy chain: the previous cell's breakers must not leak into it."""
    for stage in ("stt", "llm", "tts"):
        for member in getattr(s.assistant, stage).chain.members:
            member.breaker.record_success()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("cell, realtime", _params())
async def test_live_session_survives_the_fault_and_the_breaker_recovers(session, cell, realtime):
    s, row = session, Row(cell)
    ROWS.append(row)
    _reset(s)
    breaker = getattr(s.assistant, cell.stage).chain.member(cell.backend).breaker
    with pytest.MonkeyPatch.context() as hold_mp, ExitStack() as hold:
        for ahead in cell.held_down:
            await s.injector.inject(cell.stage, ahead, "raise", hold_mp, hold)
        with pytest.MonkeyPatch.context() as fault_mp, ExitStack() as fault:
            await s.injector.inject(cell.stage, cell.backend, cell.fault, fault_mp, fault)
            for _ in range(THRESHOLD):
                answered, by = await _turn(s, cell.stage, realtime)
                row.turns += 1
                row.answered += answered
                row.served_by[by] += 1
            row.breaker_after_fault = breaker.state.name.lower()
        # fault lifted (files restored, patches undone, hung workers released); the cooldown passes
        s.clock.advance(COOLDOWN_S)
        answered, row.recovered_by = await _turn(s, cell.stage, realtime)
        row.turns += 1
        row.answered += answered
        row.breaker_after_recovery = breaker.state.name.lower()

    assert set(row.served_by) == {cell.expected}, f"{cell}: served by {dict(row.served_by)}"
    assert row.answered == THRESHOLD + 1 - (THRESHOLD if cell.expected == "none" else 0)
    assert row.breaker_after_fault == BreakerState.OPEN.name.lower(), "the breaker did not open"
    assert row.recovered_by == cell.backend, f"after the fault was lifted {row.recovered_by} answered"
    assert row.breaker_after_recovery == BreakerState.CLOSED.name.lower()


def _table(rows: list[Row]) -> str:
    head = f"{'stage':5} {'backend':13} {'fault':8} {'turns':>5} {'answered':>8}  {'served during fault':24} " \
           f"{'breaker':8} {'recovered by':13} {'breaker':8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        during = ", ".join(f"{k} x{v}" for k, v in r.served_by.items())
        lines.append(f"{r.cell.stage:5} {r.cell.backend:13} {r.cell.fault:8} {r.turns:5d} {r.answered:8d}  "
                     f"{during:24} {r.breaker_after_fault:8} {r.recovered_by:13} {r.breaker_after_recovery:8}")
    total_turns = sum(r.turns for r in rows)
    total_answered = sum(r.answered for r in rows)
    recovered = sum(r.recovered_by == r.cell.backend for r in rows)
    lines.append(f"{len(rows)} cells, {total_turns} turns, {total_answered} answered "
                 f"(the rest: STT had no backend left and the assistant stayed quiet), "
                 f"{recovered}/{len(rows)} backends recovered after the fault was lifted")
    return "\n".join(lines)
