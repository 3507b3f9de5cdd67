"""Microphone and speaker over sounddevice, with recovery when a device goes away.

The PortAudio callbacks run on their own thread and must never block: the microphone callback
only copies the block and hands it to the event loop; the speaker callback only copies from a
buffer that the loop fills.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from Core import metrics
from Core.audio import STT_RATE, Audio, resample
from Core.clock import SampleClock
from Core.errors import LuxaError
from Core.text import heard_text

if TYPE_CHECKING:
    from Orchestrator.echo import Reference

log = logging.getLogger(__name__)
T = TypeVar("T")
# how long close() waits for PortAudio to let go of a stream; a frozen audio server may never answer
CLOSE_WAIT_S = 1.0
# audio.playback_latency_s is chosen by this: the smallest buffer that does not underrun under load
UNDERRUNS = metrics.counter("luxa_speaker_underruns_total",
                            "output blocks the audio device asked for before LUXA could fill them, while a reply played")
MIC_JUMP_S = 0.06  # mic blocks this far on average off the running sample clock: re-anchor their capture times
MIC_RESTART_S = 0.5  # one block this far off: re-anchor at once


class NoAudioDevice(LuxaError):
    pass


def _sd() -> Any:
    try:
        import sounddevice
    except OSError as err:  # PortAudio itself is missing
        raise NoAudioDevice(f"audio is unavailable: {err} (install libportaudio2)") from None
    return sounddevice


def find_device(spec: int | str | None, kind: str) -> int | None:
    """Device index for an index or a part of a name; None = the system default."""
    sd = _sd()
    channels = "max_input_channels" if kind == "input" else "max_output_channels"
    devices = list(enumerate(sd.query_devices()))
    usable = [(i, d) for i, d in devices if d[channels] > 0]
    if not usable:
        hint = "use --text to type instead" if kind == "input" else "replies will only be printed"
        raise NoAudioDevice(f"no audio {kind} device found (see `run_assistant.py devices`); {hint}")
    if spec is None or spec == "":
        return None
    if isinstance(spec, int) or str(spec).isdigit():
        index = int(spec)
        if any(i == index for i, _ in usable):
            return index
        raise NoAudioDevice(f"audio {kind} device {index} does not exist (see `run_assistant.py devices`)")
    exact = [i for i, d in usable if d["name"] == spec]
    partial = [i for i, d in usable if str(spec).lower() in d["name"].lower()]
    if exact or partial:
        return (exact or partial)[0]
    raise NoAudioDevice(f"no audio {kind} device named {spec!r} (see `run_assistant.py devices`)")


class Microphone:
    """Yields 16 kHz float32 frames of `frame_ms`; reopens the device with back-off when it fails.

    Only digital silence for `dead_after_s` (a real microphone always has a noise floor) gets one
    reopen: when a device vanishes, PulseAudio quietly moves the stream to another source, often
    a silent one. Still silent on the fresh stream, the input is muted or a null source: that is
    said once and listening goes on, since reopening it every few seconds would change nothing.
    """

    def __init__(self, device: int | str | None, frame_ms: int, initial_backoff_s: float, max_backoff_s: float,
                 dead_after_s: float = 0.0, stall_s: float = 2.0, on_attempt: Callable[[], None] | None = None):
        self.device_spec = device
        # told of every (re)open attempt: retrying a lost device is progress, not a hang (the watchdog)
        self.on_attempt = on_attempt or (lambda: None)
        self.frame_len = STT_RATE * frame_ms // 1000
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.stall_s = stall_s
        self.dead_after_s = dead_after_s
        self.lost_count = 0
        self.silent = False  # only digital silence, even after a reopen: muted, or a null source
        self._reopened_for_silence = False
        self._queue: asyncio.Queue[tuple[np.ndarray, float]] = asyncio.Queue(maxsize=500)
        self._dropped = 0  # blocks dropped from a full queue: a break in the sample timeline
        self._stream = None
        self._error: str | None = None
        # time.monotonic() at which the first sample of the frame last yielded was captured (echo cancellation)
        self.frame_time: float | None = None

    def _open(self, loop: asyncio.AbstractEventLoop) -> int:
        sd = _sd()
        index = find_device(self.device_spec, "input")
        info = sd.query_devices(index if index is not None else sd.default.device[0])
        rate = int(info["default_samplerate"])
        try:
            sd.check_input_settings(device=index, samplerate=STT_RATE, channels=1, dtype="float32")
            rate = STT_RATE  # no resampling at all when the device can do 16 kHz itself
        except Exception:
            pass

        def callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            block = indata[:, 0].copy()
            captured = time.monotonic() - _input_lag(time_info, frames / rate)
            try:
                loop.call_soon_threadsafe(self._put, (block, captured))
            except RuntimeError:  # loop closed during shutdown
                pass

        stream = sd.InputStream(device=index, samplerate=rate, channels=1, dtype="float32",
                                blocksize=rate * 30 // 1000, callback=callback, finished_callback=lambda: None)
        self._stream = stream
        stream.start()
        log.info("microphone open: %s at %d Hz", info["name"], rate)
        return rate

    def _only_silence(self) -> None:
        """Reopen once (the device may be gone); after that, say that the input is silent and listen on."""
        if not self._reopened_for_silence:
            self._reopened_for_silence = True
            raise ConnectionError(f"only digital silence for {self.dead_after_s:g} s")
        self.silent = True
        log.warning("the microphone gives only digital silence, even after reopening it: it is muted or "
                    "a silent source; still listening")

    def _heard_sound(self) -> None:
        if self.silent:
            log.info("the microphone hears sound again")
        self.silent = self._reopened_for_silence = False

    def _put(self, block: tuple[np.ndarray, float]) -> None:
        if self._queue.full():  # the loop fell behind: drop the oldest audio, never block
            self._queue.get_nowait()
            self._dropped += 1
        self._queue.put_nowait(block)

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            _shut(stream, "input")

    async def frames(self, stop: asyncio.Event) -> AsyncIterator[np.ndarray]:
        loop = asyncio.get_running_loop()
        backoff = self.initial_backoff_s
        pending = np.zeros(0, np.float32)
        pending_t = 0.0  # capture time of pending[0]
        while not stop.is_set():
            self.on_attempt()
            try:
                rate = await asyncio.wrap_future(_daemon_call(self._open, "microphone-open", loop))
            except Exception as err:
                if isinstance(err, NoAudioDevice) and self.lost_count == 0:
                    raise
                log.warning("microphone unavailable (%s); retrying in %.1f s", _first_line(err), backoff)
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            backoff = self.initial_backoff_s
            zeros = 0.0
            clock = SampleClock(round(MIC_JUMP_S * STT_RATE), round(MIC_RESTART_S * STT_RATE))
            dropped = self._dropped
            try:
                while not stop.is_set():
                    try:
                        async with asyncio.timeout(self.stall_s):
                            block, captured = await self._queue.get()
                    except TimeoutError:
                        # PortAudio often reports a vanished device only by going quiet
                        raise ConnectionError(f"no audio from the microphone for {self.stall_s:g} s") from None
                    if block.any():
                        zeros = 0.0
                        self._heard_sound()
                    else:
                        zeros += len(block) / rate
                    if self.dead_after_s and zeros >= self.dead_after_s and not self.silent:
                        self._only_silence()
                    block = resample(block, rate, STT_RATE) if rate != STT_RATE else block
                    # callbacks jitter, the ADC does not (Core.clock): the frames' capture times pair them
                    # with what the speaker played (echo cancellation)
                    if self._dropped != dropped:
                        dropped = self._dropped
                        clock.reset()
                    pending_t = (clock.place(round(captured * STT_RATE), len(block)) - len(pending)) / STT_RATE
                    pending = np.concatenate([pending, block])
                    while len(pending) >= self.frame_len:
                        frame, pending = pending[: self.frame_len], pending[self.frame_len:]
                        self.frame_time = pending_t
                        pending_t += self.frame_len / STT_RATE
                        yield frame
            except ConnectionError as err:
                self.lost_count += 1
                log.warning("microphone lost: %s; reopening", err)
            finally:
                self.close()
                pending = np.zeros(0, np.float32)


class FileMicrophone:
    """A recording played as if it were a microphone (`turn -i`, benchmarks): same frames, same loop."""

    def __init__(self, audio: Audio, frame_ms: int, trailing_silence_ms: int, realtime: bool = True):
        self.frame_len = STT_RATE * frame_ms // 1000
        tail = np.zeros(STT_RATE * trailing_silence_ms // 1000, np.float32)
        self.samples = np.concatenate([audio.to_rate(STT_RATE).samples, tail])
        self.realtime = realtime

    async def frames(self, stop: asyncio.Event) -> AsyncIterator[np.ndarray]:
        started = time.perf_counter()
        for i in range(0, len(self.samples) - self.frame_len + 1, self.frame_len):
            if stop.is_set():
                return
            if self.realtime:
                await asyncio.sleep(max(0.0, started + (i + self.frame_len) / STT_RATE - time.perf_counter()))
            else:
                await asyncio.sleep(0)  # let early STT and the turn start between frames
            yield self.samples[i:i + self.frame_len]


class _Output:
    """A started output stream with its own lock: PortAudio aborts the process if a stream is closed
    while another thread restarts it. One lock per stream, so that a thread stuck for good in a dead
    stream's call holds up that stream only, never the one that replaces it."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def flush(self) -> None:
        """Drop what sits in the device buffer (abort), then play on (start)."""
        with self.lock:
            try:
                self.stream.abort()
                self.stream.start()
            except Exception:  # the device may be going away; the stall check will tell
                log.debug("flushing the output stream failed", exc_info=True)

    @property
    def stopped(self) -> bool:
        """Not playing, and not because a flush is between its abort and its start."""
        try:
            active = self.stream.active
        except Exception:  # PortAudio reports errors here too: a stream in error does not play
            active = False
        return not active and not self.lock.locked()


class Speaker:
    """One output stream fed from a buffer; stop() silences it at the next callback (barge-in).

    The stream can die under us: the audio server restarts, the device goes. A stream that stopped,
    or that has not called back for `stall_s` (a live one calls back every block, idle or not), is
    replaced with back-off while the queued audio waits for it; drain() never waits longer than the
    queued audio lasts plus a margin for one such reopen.
    """

    def __init__(self, device: int | str | None, latency_s: float, initial_backoff_s: float = 0.5,
                 max_backoff_s: float = 5.0, stall_s: float = 2.0):
        self.device_spec = device
        self.latency_s = latency_s
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.stall_s = stall_s
        self.rate = 0
        self._lock = threading.Lock()
        self._queue: collections.deque[np.ndarray] = collections.deque()
        self._labels: list[tuple[int, str]] = []  # (end sample of the label, label)
        self._queued = 0
        self._played = 0
        self._first: float | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._output: _Output | None = None
        self._tick = time.monotonic()  # the last callback
        self._recovery: asyncio.Future | None = None
        self._closed = asyncio.Event()
        self.gain = 1.0  # the output volume commands set ("louder"), applied to what is queued next
        self.echo_reference: Reference | None = None  # told every block played, for echo cancellation

    def open(self) -> None:
        """Open and start the device. Blocking; the reopens after a loss run it off the loop."""
        sd = _sd()
        index = find_device(self.device_spec, "output")
        info = sd.query_devices(index if index is not None else sd.default.device[1])
        rate = int(info["default_samplerate"])
        # 40 ms blocks: shorter ones starve (ALSA underruns) while inference threads hold the GIL
        stream = sd.OutputStream(device=index, samplerate=rate, channels=1, dtype="float32",
                                 latency=self.latency_s, blocksize=rate // 25, callback=self._callback)
        with self._lock:
            if self.rate and rate != self.rate and self._queue:
                log.warning("speaker rate changed to %d Hz; the queued reply is dropped", rate)
                self._queue.clear()
                self._idle.set()
            self.rate = rate
            self._tick = time.monotonic()
        stream.start()
        output = _Output(stream)
        if self._closed.is_set():  # closed while this reopen was under way
            _shut(stream, "output", output.lock)
            return
        self._output = output
        log.info("speaker open: %s at %d Hz", info["name"], rate)

    def close(self) -> None:
        """For good; waits a bounded time for the stream, never for a dead audio server."""
        self._closed.set()
        if self._recovery is not None:
            self._recovery.cancel()
        output, self._output = self._output, None
        if output is not None:
            _shut(output.stream, "output", output.lock)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self._tick = time.monotonic()
        out = outdata[:, 0]
        filled = 0
        if getattr(status, "output_underflow", False) and self._queue and self._first is not None:
            UNDERRUNS.inc()  # a gap inside a reply, heard as a click (idle ones, and the start's, are silence anyway)
        with self._lock:
            while filled < frames and self._queue:
                head = self._queue[0]
                take = min(len(head), frames - filled)
                out[filled:filled + take] = head[:take]
                if take == len(head):
                    self._queue.popleft()
                else:
                    self._queue[0] = head[take:]
                filled += take
            if filled and self._first is None:
                # the first sample reaches the ear after the output latency
                self._first = time.perf_counter() + max(0.0, time_info.outputBufferDacTime - time_info.currentTime)
            self._played += filled
            if not self._queue:
                self._idle.set()
        out[filled:] = 0.0
        reference = self.echo_reference
        if reference is not None:  # silence too: the reference must stay one continuous timeline
            lead = _output_lead(time_info, self.latency_s)
            reference.write(out.copy(), self.rate, time.monotonic() + lead)

    # --- the Sink interface (Orchestrator.turn) ---
    def begin(self) -> None:
        with self._lock:
            self._queue.clear()
            self._labels.clear()
            self._queued = self._played = 0
            self._first = None
            self._idle.set()

    def play(self, audio: Audio, label: str) -> None:
        samples = resample(audio.samples, audio.sample_rate, self.rate) * np.float32(self.gain)
        with self._lock:
            self._queue.append(samples)
            self._queued += len(samples)
            self._labels.append((self._queued, label))
            self._idle.clear()
        trouble = self._trouble()
        if trouble is not None:
            self._recover(trouble)  # now, not at drain(): the reply plays as soon as a stream runs

    def first_sample_time(self) -> float | None:
        return self._first

    async def drain(self) -> None:
        """Until the queued audio has played, or its duration plus a margin has passed."""
        with self._lock:
            left_s = (self._queued - self._played) / max(self.rate, 1)
        # margin: the output latency, the time to notice a stall and the longest wait between reopens
        deadline = time.monotonic() + left_s + self.latency_s + self.stall_s + self.max_backoff_s
        while not self._idle.is_set():
            trouble = self._trouble()
            if trouble is not None:
                await asyncio.wait({self._recover(trouble)}, timeout=max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                self._give_up()
                return
            await asyncio.sleep(0.02)
        await asyncio.sleep(self.latency_s)  # what is in the device buffer still has to come out

    def stop(self) -> None:
        """Barge-in: drop what is queued and what already sits in the device buffer."""
        with self._lock:
            was_playing = bool(self._queue)
            self._queue.clear()
            self._idle.set()
        reference = self.echo_reference
        if was_playing and reference is not None:
            reference.cut(time.monotonic())
        output = self._output
        if was_playing and output is not None and self._trouble() is None:
            # abort discards the buffered output_latency worth of audio; off the loop, it may block.
            # Never on a dead stream: its start() can wait forever for a server that is gone.
            threading.Thread(target=output.flush, name="speaker-flush", daemon=True).start()

    @property
    def speaking(self) -> bool:
        return not self._idle.is_set()

    def heard(self) -> str:
        """Labels whose audio was played in full, plus the played share of the current one."""
        with self._lock:
            played, labels = self._played, list(self._labels)
        return heard_text([(float(end), label) for end, label in labels], float(played))

    # --- recovery ---
    def _trouble(self) -> str | None:
        """Why the output stream cannot play; None while it plays (or once closed: nothing to fix)."""
        output = self._output
        if self._closed.is_set():
            return None
        if output is None:
            return "no output stream"
        if output.stopped:
            return "the output stream stopped"
        quiet = time.monotonic() - self._tick
        if quiet > self.stall_s:
            return f"no output callback for {quiet:.1f} s"
        return None

    def _recover(self, trouble: str) -> asyncio.Future:
        """The reopen under way, started on the first report of a loss."""
        if self._recovery is None or self._recovery.done():
            log.warning("speaker lost: %s; reopening", trouble)
            self._recovery = asyncio.ensure_future(self._reopen())
        return self._recovery

    async def _reopen(self) -> None:
        output, self._output = self._output, None
        if output is not None:  # closed first: two streams must never pull from one queue
            await asyncio.to_thread(_shut, output.stream, "output", output.lock)  # bounded: no exit hang
        backoff = self.initial_backoff_s
        while not self._closed.is_set():
            try:
                await asyncio.wrap_future(_daemon_call(self.open, "speaker-open"))
                return
            except Exception as err:
                log.warning("speaker unavailable (%s); retrying in %.1f s", _first_line(err), backoff)
                await _sleep_or_stop(self._closed, backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    def _give_up(self) -> None:
        with self._lock:
            left_s = sum(len(block) for block in self._queue) / max(self.rate, 1)
            self._queue.clear()
            self._idle.set()
        log.warning("speaker: gave up on the last %.1f s of the reply (no working output stream)", left_s)


def _output_lead(time_info: Any, fallback_s: float) -> float:
    """How long until this callback's block reaches the speaker, as PortAudio says (if it says)."""
    lead = getattr(time_info, "outputBufferDacTime", 0.0) - getattr(time_info, "currentTime", 0.0)
    return lead if 0.0 < lead < 2.0 else fallback_s


def _input_lag(time_info: Any, block_s: float) -> float:
    """How long ago this callback's block began at the microphone, as PortAudio says (if it says)."""
    lag = getattr(time_info, "currentTime", 0.0) - getattr(time_info, "inputBufferAdcTime", 0.0)
    return lag if 0.0 < lag < 2.0 else block_s


def _daemon_call(fn: Callable[..., T], name: str, *args: Any) -> concurrent.futures.Future[T]:
    """`fn(*args)` on a daemon thread. A PortAudio call on a dead or frozen audio server can block
    for good, and such a thread in asyncio's default executor would hang interpreter exit."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return  # the caller gave up before the thread started
        try:
            future.set_result(fn(*args))
        except BaseException as err:
            future.set_exception(err)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _shut(stream: Any, kind: str, lock: threading.Lock | None = None) -> None:
    """abort + close (under `lock`), waited for CLOSE_WAIT_S at most: past that the stream is left
    behind (a frozen server) rather than hang the caller, which may be the event loop."""

    def shut() -> None:
        with lock or threading.Lock():
            stream.abort()
            stream.close()

    try:
        _daemon_call(shut, f"{kind}-close").result(timeout=CLOSE_WAIT_S)
    except concurrent.futures.TimeoutError:
        log.warning("the %s stream did not close within %.1f s; left behind", kind, CLOSE_WAIT_S)
        _skip_portaudio_exit()
    except Exception:  # a vanished device may refuse to close cleanly
        log.debug("closing the %s stream failed", kind, exc_info=True)


def _skip_portaudio_exit() -> None:
    """Drop sounddevice's exit handler: its Pa_Terminate would wait for good on the stream left
    behind, and the process would never exit. The kernel frees the device when the process ends."""
    import atexit

    handler = getattr(_sd(), "_exit_handler", None)  # private to sounddevice: absent, nothing to do
    if handler is not None:
        atexit.unregister(handler)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
