"""The default mode: the voice loop (mic -> speaker), or `--text` to type instead of speaking."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading
from collections.abc import Awaitable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from Orchestrator.assistant import Assistant
    from Orchestrator.audio_io import Speaker
    from Orchestrator.cli import Context
    from Orchestrator.voice_loop import State


HELP = "the voice loop (default when no command is given)"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    return None


async def run(args: argparse.Namespace, ctx: Context) -> int:
    from Orchestrator.audio_io import Microphone, NoAudioDevice, Speaker, find_device
    from Orchestrator.service.daemon import running
    from Orchestrator.service.notify import Heartbeat

    cfg = ctx.config
    input_device = args.input_device if getattr(args, "input_device", None) is not None else cfg.audio.input_device
    output_device = args.output_device if getattr(args, "output_device", None) is not None else cfg.audio.output_device
    text_mode = bool(getattr(args, "text", False))
    if not text_mode:
        find_device(input_device, "input")  # fail fast, before loading models, when there is no mic
    output = Speaker(output_device, cfg.audio.playback_latency_s, cfg.audio.reconnect_initial_s,
                     cfg.audio.reconnect_max_s)
    speaker: Speaker | None = output  # None: --text without a speaker, replies are only printed
    async with running(cfg, ctx.gpu, "text" if text_mode else "voice") as daemon:
        assistant, notifier, state, stop = daemon.assistant, daemon.notifier, daemon.state, daemon.stop
        try:
            output.open()
            daemon.on_stop(output.close)
        except NoAudioDevice as err:
            if not text_mode:
                raise
            log.warning("%s", err)
            speaker = None

        heartbeat = Heartbeat()  # beaten by the voice loop's progress: mic frames, turn steps, mic retries

        def on_state(new_state: State) -> None:
            heartbeat.beat()
            state["state"] = new_state.value
            notifier.status(new_state.value)
            _show(f"[{new_state.value}]")

        notifier.ready()
        if text_mode:
            state["state"] = "reading"
            notifier.status("reading typed questions")
            return await _text_loop(assistant, speaker, stop)
        from Orchestrator.echo import make_canceller
        from Orchestrator.voice_loop import VoiceLoop

        a = cfg.audio
        echo = make_canceller(a.barge_in, a.aec_noise_suppression, a.aec_min_erle_db)
        if echo is not None:
            output.echo_reference = echo.reference  # the reference: every block the speaker plays
        mic = Microphone(input_device, cfg.audio.frame_ms, cfg.audio.reconnect_initial_s, cfg.audio.reconnect_max_s,
                         cfg.audio.dead_input_s, on_attempt=heartbeat.beat)
        loop = VoiceLoop(assistant, mic, output, show=_show, on_state=on_state, on_frame=heartbeat.beat, echo=echo)
        heartbeat.beat()
        notifier.require_progress(heartbeat)  # a loop that runs but no longer hears gets restarted
        _show("LUXA is listening (Ctrl-C to stop)")
        await _until_stopped(loop.run(stop), stop)
        return 0


async def _until_stopped(work: Awaitable[object], stop: asyncio.Event) -> None:
    """Run `work` until it ends or `stop` is set; then cancel it promptly."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, stopper):
        if not pending.done():
            pending.cancel()
    await asyncio.gather(task, stopper, return_exceptions=True)
    error = task.exception() if task in done else None
    if error is not None:
        raise error


def _show(line: str) -> None:
    print(line, flush=True)


async def _text_loop(assistant: Assistant, speaker: Speaker | None, stop: asyncio.Event) -> int:
    """Type a question, read (and hear) the reply. Ends on EOF, `exit`, Ctrl-C or SIGTERM."""
    import time

    from Orchestrator.turn import FileSink, Stopwatch, TurnResult, TurnRunner

    lines = _stdin_lines()
    runner = TurnRunner(assistant, on_text=lambda piece: print(piece, end="", flush=True))
    sink = speaker or FileSink()
    interactive = sys.stdin.isatty()
    while not stop.is_set():
        if interactive:
            print("you> ", end="", flush=True)
        getter = asyncio.ensure_future(lines.get())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not getter.done():
            getter.cancel()
            break
        line = getter.result()
        if line is None or line.strip() in ("exit", "quit"):
            break
        text = line.strip()
        if not text:
            continue
        print("luxa> ", end="", flush=True)
        result = TurnResult(text, None)
        turn = asyncio.ensure_future(runner.respond(result, sink, Stopwatch(time.perf_counter())))
        await _until_stopped(turn, stop)
        print(flush=True)
    return 0


def _stdin_lines() -> asyncio.Queue:
    """stdin read by a daemon thread: a blocked read must never hold up shutdown."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def reader() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except RuntimeError:  # the loop closed first: we are shutting down
            pass

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    return queue

