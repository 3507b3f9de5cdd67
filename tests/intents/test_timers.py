"""Timers on the real clock: they ring on time, can be cancelled, paused and adjusted, and a timer
set before a restart rings after it (the state file is the only thing that survives)."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from Orchestrator.intents.timers import Timers

pytestmark = pytest.mark.asyncio(loop_scope="function")


def _listening(timers: Timers) -> asyncio.Queue:
    rang: asyncio.Queue = asyncio.Queue()
    timers.listen(lambda timer: rang.put_nowait((timer, time.monotonic())))
    return rang


async def test_a_timer_rings_on_time_and_is_then_gone(tmp_path):
    timers = Timers(tmp_path / "timers.json", 3600)
    await timers.start()
    rang = _listening(timers)
    started = time.monotonic()
    timers.add(0.3, "en")
    timer, at = await asyncio.wait_for(rang.get(), 5)
    assert 0.3 <= at - started < 1.0 and timer.duration_s == 0.3
    assert timers.timers == {} and json.loads((tmp_path / "timers.json").read_text()) == []
    await timers.close()


async def test_a_cancelled_timer_never_rings(tmp_path):
    timers = Timers(tmp_path / "timers.json", 3600)
    await timers.start()
    rang = _listening(timers)
    timers.cancel(timers.add(0.2, "en"))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(rang.get(), 0.6)
    await timers.close()


async def test_pause_keeps_the_time_left_and_resume_counts_down_from_it(tmp_path):
    timers = Timers(tmp_path / "timers.json", 3600)
    await timers.start()
    timer = timers.add(60, "en")
    timers.pause(timer)
    left = timer.remaining()
    await asyncio.sleep(0.2)
    assert timer.remaining() == left and 59 <= left <= 60
    timers.resume(timer)
    timers.adjust(timer, -30)
    assert 29 <= timer.remaining() <= 30
    await timers.close()


async def test_a_timer_set_before_a_restart_rings_after_it(tmp_path):
    path = tmp_path / "timers.json"
    before = Timers(path, 3600)
    await before.start()
    before.add(0.8, "fr", name="pasta")
    await before.close()  # the daemon stops: nothing but the file is left
    after = Timers(path, 3600)
    rang = _listening(after)
    await after.start()
    timer, _ = await asyncio.wait_for(rang.get(), 5)
    assert (timer.name, timer.language) == ("pasta", "fr")
    await after.close()


async def test_an_unreadable_state_file_starts_without_timers(tmp_path, caplog):
    path = tmp_path / "timers.json"
    path.write_text("{not json")
    timers = Timers(path, 3600)
    await timers.start()
    assert timers.timers == {} and "unreadable" in caplog.text
    await timers.close()


async def test_a_timer_done_before_anyone_listens_is_announced_to_the_first_listener(tmp_path):
    timers = Timers(tmp_path / "timers.json", 3600)
    await timers.start()
    timers.add(0.0, "en")
    await asyncio.sleep(0.05)  # done while the voice loop is still starting
    rang: asyncio.Queue = asyncio.Queue()
    timers.listen(lambda timer: rang.put_nowait(timer))
    assert (await asyncio.wait_for(rang.get(), 1)).duration_s == 0.0
    await timers.close()
