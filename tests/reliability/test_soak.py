"""Soak: many turns in a row; every one answers and nothing accumulates.

The daemon part runs `python run_assistant.py` on the private PulseAudio server (the product as a
user runs it) with its own TMPDIR, and plays the corpus questions into the virtual microphone.
On 2 shared cores a voice turn costs about 10 s (question, STT, reply, playback), so the short
form runs VOICE_TURNS of them, and the rest of the 50 turns through
Orchestrator.commands.turn.one_turn in this process (the same VoiceLoop, fed from the file in
real time). The long form (--long) talks to the daemon for an hour.

Resources are compared between the level after WARMUP turns (models loaded, thread pools and
allocator settled) and the end; the tolerances are in tests/reliability/helpers.py.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from Config import load_config
from Core.audio import load_audio
from Orchestrator.assistant import Assistant
from Orchestrator.commands.turn import one_turn
from tests.e2e.harness import AssistantProcess
from tests.fakes import CPU
from tests.reliability.helpers import TurnLog, assert_flat, measure, run_with_deadline

pytestmark = [pytest.mark.reliability, pytest.mark.e2e]

VOICE_TURNS = 20
IN_PROCESS_TURNS = 30
WARMUP = 3
SAMPLE_EVERY = 5
LONG_SOAK_S = 3600.0
LONG_SAMPLE_EVERY = 50
HEARD_TIMEOUT_S = 120.0  # hang detection: far above any turn on a busy machine
ANSWER_TIMEOUT_S = 180.0
MAX_LOST_IN_A_ROW = 2  # after that the daemon is considered stuck and the soak stops early


def _voice_soak(virtual_audio, questions: list[Path], tmp_path: Path, *, turns: int | None,
                seconds: float | None, sample_every: int) -> tuple[TurnLog, object, object]:
    temp_dir = tmp_path / "daemon-tmp"
    temp_dir.mkdir()
    luxa = AssistantProcess({**virtual_audio.env, "TMPDIR": str(temp_dir)})
    log, warm, lost_in_a_row = TurnLog(), None, 0
    started = time.monotonic()
    try:
        luxa.wait_for("LUXA is listening", timeout=300)
        while (turns is None or log.asked < turns) and (seconds is None or time.monotonic() - started < seconds):
            began = time.monotonic()
            log.asked += 1
            virtual_audio.play_into_mic(questions[log.asked % len(questions)]).wait(timeout=30)
            try:
                luxa.wait_for(r"^you: ", timeout=HEARD_TIMEOUT_S)
                luxa.wait_for(r"^luxa: ", timeout=ANSWER_TIMEOUT_S)
            except AssertionError as err:
                print(f"turn {log.asked} not answered: {err}")
                lost_in_a_row += 1
                if lost_in_a_row >= MAX_LOST_IN_A_ROW or luxa.proc.poll() is not None:
                    break
                continue
            lost_in_a_row = 0
            log.answered += 1
            log.seconds.append(time.monotonic() - began)
            if log.asked == WARMUP:
                warm = measure(luxa.proc.pid, temp_dir)
                log.samples.append((log.asked, warm))
            elif log.asked % sample_every == 0:
                log.samples.append((log.asked, measure(luxa.proc.pid, temp_dir)))
        end = measure(luxa.proc.pid, temp_dir)
        if log.samples[-1:] and log.samples[-1][0] != log.asked:
            log.samples.append((log.asked, end))
        assert luxa.proc.poll() is None, f"the daemon exited ({luxa.proc.returncode})"
    finally:
        luxa.stop(timeout=30)
        luxa.kill()
    return log, warm, end


@pytest.mark.timeout(900)
def test_voice_turns_through_the_daemon_all_answer_and_resources_stay_flat(virtual_audio, questions, tmp_path, report):
    log, warm, end = _voice_soak(virtual_audio, questions, tmp_path, turns=VOICE_TURNS, seconds=None,
                                 sample_every=SAMPLE_EVERY)
    report("soak: daemon through the virtual microphone", log.report(f"{VOICE_TURNS} voice turns"))
    assert log.answered == log.asked == VOICE_TURNS
    assert warm is not None
    assert_flat(warm, end)


@pytest.mark.long
@pytest.mark.timeout(int(LONG_SOAK_S) + 900)
def test_one_hour_of_voice_turns_all_answer_and_resources_stay_flat(virtual_audio, questions, tmp_path, report):
    log, warm, end = _voice_soak(virtual_audio, questions, tmp_path, turns=None, seconds=LONG_SOAK_S,
                                 sample_every=LONG_SAMPLE_EVERY)
    report("soak (long): one hour through the virtual microphone", log.report("voice turns for one hour"))
    assert log.answered == log.asked and log.asked > WARMUP
    assert_flat(warm, end)


@pytest.mark.timeout(900)
@pytest.mark.asyncio(loop_scope="function")
async def test_in_process_turns_from_files_all_answer_and_resources_stay_flat(questions, tmp_path, report, monkeypatch):
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp_dir))
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    audio = [load_audio(q) for q in questions]
    assistant = Assistant(load_config(environ={}), CPU)
    await assistant.start()
    log, warm = TurnLog(), None
    try:
        for n in range(1, IN_PROCESS_TURNS + 1):
            began = time.monotonic()
            log.asked += 1
            result, _ = await run_with_deadline(one_turn(assistant, audio[n % len(audio)]), ANSWER_TIMEOUT_S, f"turn {n}")
            if result.transcript.strip() and result.reply.strip():
                log.answered += 1
            log.seconds.append(time.monotonic() - began)
            if n == WARMUP:
                warm = measure(os.getpid(), temp_dir)
                log.samples.append((n, warm))
            elif n % SAMPLE_EVERY == 0:
                log.samples.append((n, measure(os.getpid(), temp_dir)))
        end = measure(os.getpid(), temp_dir)
    finally:
        await assistant.close()
    report("soak: in-process one_turn()", log.report(f"{IN_PROCESS_TURNS} turns from files (real-time feed)"))
    assert log.answered == log.asked == IN_PROCESS_TURNS
    assert_flat(warm, end)
