"""The default mode: the voice loop (mic -> speaker), or `--text` to type instead of speaking."""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading

HELP = "the voice loop (default when no command is given)"
log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    return None


class Session:
    """Everything the daemon starts, stopped in reverse order on SIGINT/SIGTERM."""

    def __init__(self, args, ctx):
        self.args = args
        self.ctx = ctx
        self.stop = asyncio.Event()

    def install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stop.set)
            except (NotImplementedError, RuntimeError):  # Windows: the service stops us instead
                pass


async def run(args, ctx) -> int:
    from Orchestrator.assistant import Assistant
    from Orchestrator.audio_io import Microphone, NoAudioDevice, Speaker, find_device

    cfg = ctx.config
    input_device = args.input_device if getattr(args, "input_device", None) is not None else cfg.audio.input_device
    output_device = args.output_device if getattr(args, "output_device", None) is not None else cfg.audio.output_device
    text_mode = bool(getattr(args, "text", False))
    if not text_mode:
        find_device(input_device, "input")  # fail fast, before loading models, when there is no mic
    session = Session(args, ctx)
    session.install_signals()
    assistant = Assistant(cfg, ctx.gpu)
    await assistant.start()
    speaker = Speaker(output_device, cfg.audio.playback_latency_s)
    try:
        try:
            speaker.open()
        except NoAudioDevice as err:
            if not text_mode:
                raise
            log.warning("%s", err)
            speaker = None
        if text_mode:
            return await _text_loop(assistant, speaker, session.stop)
        from Orchestrator.voice_loop import VoiceLoop

        mic = Microphone(input_device, cfg.audio.frame_ms, cfg.audio.reconnect_initial_s, cfg.audio.reconnect_max_s)
        loop = VoiceLoop(assistant, mic, speaker, show=_show,
                         on_state=lambda state: _show(f"[{state.value}]"))
        _show("LUXA is listening (Ctrl-C to stop)")
        await _until_stopped(loop.run(session.stop), session.stop)
        return 0
    finally:
        if speaker is not None:
            speaker.close()
        await assistant.close()


async def _until_stopped(work, stop: asyncio.Event) -> None:
    """Run `work` until it ends or `stop` is set; then cancel it promptly."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, stopper):
        if not pending.done():
            pending.cancel()
    await asyncio.gather(task, stopper, return_exceptions=True)
    if task in done and task.exception():
        raise task.exception()


def _show(line: str) -> None:
    print(line, flush=True)


async def _text_loop(assistant, speaker, stop: asyncio.Event) -> int:
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

