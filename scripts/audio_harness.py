"""Real audio for end-to-end tests and benchmarks: a private PulseAudio server and the assistant as a subprocess.

In scripts/ (not tests/) because `bench` uses it too and must work from a checkout without the test tree.
"""
from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile

REPO_ROOT = Path(__file__).resolve().parents[1]


class VirtualAudio:
    """scripts/virtual_audio.sh in a temporary folder; env to give to every audio process."""

    def __init__(self, folder: Path):
        self.folder = folder
        out = self._script("start", env=None).stdout
        self.env = dict(os.environ)
        for line in out.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            self.env[name] = value.strip("'\"")

    def _script(self, action: str, env: dict[str, str] | None) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(REPO_ROOT / "scripts" / "virtual_audio.sh"), action, str(self.folder)],
                              env=env, capture_output=True, text=True, timeout=60, check=action == "start")

    def restart(self) -> None:
        """Kill the server as a crash would (SIGKILL: clients get no goodbye), then start it again in
        the same folder, on the same socket; the noise floor's pacat dies with it and is started anew."""
        self.stop_noise_floor()
        pid = int((self.folder / "pulse.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        self._script("start", env=None)
        self.start_noise_floor()

    def start_noise_floor(self, dbfs: float = -60.0) -> None:
        """A faint hiss into the virtual mic, as every real microphone has (never exact zeros)."""
        self._noise = subprocess.Popen(["pacat", "--playback", "--device=vmic_feed", "--raw", "--format=s16le",
                                        "--rate=16000", "--channels=1"], stdin=subprocess.PIPE, env=self.env)
        level = 32768 * 10 ** (dbfs / 20) * np.sqrt(3)  # uniform noise with that RMS

        noise = self._noise

        def feed() -> None:
            rng = np.random.default_rng(0)
            try:
                while noise.poll() is None:
                    noise.stdin.write(rng.uniform(-level, level, 1600).astype(np.int16).tobytes())
                    time.sleep(0.09)  # a little faster than real time: pacat buffers the rest
            except (BrokenPipeError, ValueError, OSError):
                pass

        threading.Thread(target=feed, daemon=True).start()

    def stop_noise_floor(self) -> None:
        noise, self._noise = getattr(self, "_noise", None), None
        if noise is not None:
            noise.kill()
            noise.wait(timeout=10)

    def close(self) -> None:
        self.stop_noise_floor()
        self._script("stop", env=self.env)

    def freeze(self) -> None:
        """Stop the server (SIGSTOP) as a hung one would: it keeps its socket, and answers nothing."""
        os.kill(int((self.folder / "pulse.pid").read_text()), signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(int((self.folder / "pulse.pid").read_text()), signal.SIGCONT)

    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10,
                              check=True).stdout

    def play_into_mic(self, wav: Path) -> subprocess.Popen:
        return subprocess.Popen(["paplay", "--device=vmic_feed", str(wav)], env=self.env)

    def record(self, path: Path, device: str = "vspeaker.monitor") -> "Recording":
        return Recording(self, path, device)

    def unplug_mic(self) -> None:
        """Unload the microphone's module (its keep-alive loopback goes with it)."""
        self.stop_noise_floor()  # a stream left behind would be moved to the speaker
        self._unload_sink("vmic_feed")

    def unplug_speaker(self) -> None:
        """Unload the speaker's sink while something plays on it.

        PulseAudio moves the orphaned streams to the best sink left, as a desktop does when USB
        speakers go. A stand-in for a built-in speaker (`vbuiltin`, a real sound card's class, so it
        outranks the abstract mic feed) is that sink: without it the reply would go into the mic.
        """
        if "vbuiltin" not in self.pactl("list", "short", "sinks"):
            self.pactl("load-module", "module-null-sink", "sink_name=vbuiltin", "rate=16000", "channels=1",
                       "sink_properties=device.class=sound")
        self._unload_sink("vspeaker")

    def plug_speaker(self) -> None:
        self.pactl("load-module", "module-null-sink", "sink_name=vspeaker", "rate=16000", "channels=1")
        self.pactl("load-module", "module-loopback", "source=silence", "sink=vspeaker", "latency_msec=200")

    def _unload_sink(self, name: str) -> None:
        for line in self.pactl("list", "short", "modules").splitlines():
            if "module-null-sink" in line and f"sink_name={name} " in line + " ":
                self.pactl("unload-module", line.split()[0])

    def plug_mic(self) -> None:
        self.pactl("load-module", "module-null-sink", "sink_name=vmic_feed", "rate=16000", "channels=1")
        self.pactl("load-module", "module-loopback", "source=silence", "sink=vmic_feed", "latency_msec=200")
        self.start_noise_floor()


class EchoPath:
    """The room between speaker and microphone, inside PulseAudio so that it is one steady linear
    path: a loopback from the speaker's monitor (latency_msec=1, rate adjustment off: both null
    sinks run on one clock) into a sink that convolves with a room response (a direct path
    `delay_ms` later, `gain_db` quieter, then sox's reverb tail) and plays into the mic, mixed with
    whatever else is played there. The loopback and the convolution add about 25 ms of their own."""

    def __init__(self, audio: VirtualAudio, delay_ms: float = 40.0, gain_db: float = -6.0,
                 reverberance: int = 50) -> None:
        self.audio = audio
        self.response = room_response(delay_ms, reverberance) * np.float32(10 ** (gain_db / 20))
        self._file = tempfile.NamedTemporaryFile(suffix=".wav", delete=False)
        soundfile.write(self._file.name, self.response, 16000, subtype="FLOAT")
        self.modules = [
            audio.pactl("load-module", "module-virtual-surround-sink", "sink_name=vroom", "master=vmic_feed",
                        f"hrir={self._file.name}").strip(),
            audio.pactl("load-module", "module-loopback", "source=vspeaker.monitor", "sink=vroom",
                        "latency_msec=1", "adjust_time=0").strip(),
        ]

    def close(self) -> None:
        for module in reversed(self.modules):
            try:
                self.audio.pactl("unload-module", module)
            except subprocess.SubprocessError:  # the server is already gone
                pass
        Path(self._file.name).unlink(missing_ok=True)


def room_response(delay_ms: float, reverberance: int = 50, rate: int = 16000) -> np.ndarray:
    """Impulse response: a direct path after `delay_ms`, then sox's reverb tail (about 0.3 s)."""
    impulse = np.zeros(rate // 2, np.float32)
    impulse[0] = 0.5
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "impulse.wav", Path(tmp) / "rir.wav"
        soundfile.write(str(src), impulse, rate)
        subprocess.run(["sox", str(src), str(out), "reverb", str(reverberance), "50", "60"], check=True,
                       capture_output=True, timeout=30)
        tail, _ = soundfile.read(str(out), dtype="float32")
    tail = tail / 0.5
    response = np.concatenate([np.zeros(int(delay_ms * rate / 1000), np.float32), tail])
    return np.trim_zeros(response, "b").astype(np.float32)


class Recording:
    """parecord of a device; stop() writes a valid WAV (SIGTERM) and returns (samples, start time)."""

    def __init__(self, audio: VirtualAudio, path: Path, device: str):
        self.path = path
        self.started = time.monotonic()
        self.proc = subprocess.Popen(["parecord", f"--device={device}", "--rate=16000", "--channels=1",
                                      "--format=s16le", "--file-format=wav", str(path)], env=audio.env)

    def tail(self, seconds: float) -> np.ndarray:
        """The last `seconds` recorded so far (parecord writes its WAV as it goes; the header's sizes
        are filled in only at the end, so the data chunk is found by its tag)."""
        try:
            with self.path.open("rb") as f:
                head = f.read(512)
                at = head.find(b"data")
                if at < 0:
                    return np.zeros(0, np.float32)
                start = at + 8
                size = f.seek(0, os.SEEK_END)
                want = int(seconds * 16000) * 2
                f.seek(max(start, start + (size - start) // 2 * 2 - want))
                data = f.read(want)
        except FileNotFoundError:
            return np.zeros(0, np.float32)
        return np.frombuffer(data[: len(data) // 2 * 2], np.int16).astype(np.float32) / 32768.0

    def wait_played_out(self, seconds: float = 1.2, timeout: float = 120.0, level: float = 0.003) -> bool:
        """Until something loud was recorded and then the last `seconds` are quieter than `level` (RMS
        in 10 ms windows): a reply that was sent has played out. Sent is not heard yet: a reply
        handed over in one go reaches the speaker (and this recording) a few hundred ms later, so
        quiet before it started counts for nothing. False on timeout."""
        deadline = time.monotonic() + timeout
        heard = False
        while time.monotonic() < deadline:
            tail = self.tail(seconds)
            loud = first_loud(tail, level=level) is not None
            heard = heard or loud
            if heard and not loud and len(tail) >= int(seconds * 16000):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> np.ndarray:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        samples, _ = soundfile.read(str(self.path), dtype="float32")
        return samples


class LuxaProcess:
    """`python run_assistant.py ARGS` as a subprocess; its output lines are kept and searchable.

    Without `env`, this process's environment. LUXA_SECTION__KEY variables are dropped either way,
    so a developer's own settings cannot change what a test or a benchmark runs.
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None):
        cmd = [sys.executable, "-u", str(REPO_ROOT / "run_assistant.py"), *args]
        env = {k: v for k, v in (os.environ if env is None else env).items()
               if not (k.startswith("LUXA_") and "__" in k)}
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self._eof = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line.rstrip("\n"))
            sys.stderr.write(f"[luxa] {line}")
        self._eof.set()

    def wait_for(self, pattern: str, timeout: float = 120.0) -> str:
        """The first line from now on that matches `pattern`."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and self._new.empty():
                raise AssertionError(f"assistant exited ({self.proc.returncode}) before printing {pattern!r}")
            try:
                line = self._new.get(timeout=0.2)
            except queue.Empty:
                continue
            if rx.search(line):
                return line
        raise AssertionError(f"no line matching {pattern!r} within {timeout:g} s")

    def wait_until_serving(self, pattern: str, timeout: float) -> re.Match[str]:
        """A daemon's start: the match of its first line matching `pattern`. One that exits first is
        reported with its last lines; one that does not get there within `timeout` is stopped."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if match := rx.search(self._new.get(timeout=0.5)):
                    return match
            except queue.Empty:
                if self.proc.poll() is not None:
                    self._eof.wait(timeout=5)  # its last lines, for the message
                    raise AssertionError(f"daemon exited ({self.proc.returncode}): " + "\n".join(self.lines[-10:]))
        stop_daemon(self.proc)
        raise AssertionError(f"daemon did not serve within {timeout:g} s")

    def wait_for_each(self, *patterns: str, timeout: float = 120.0) -> list[str]:
        """A line for each pattern, in whatever order they come (from now on)."""
        deadline = time.monotonic() + timeout
        found: dict[str, str] = {}
        pending = {pattern: re.compile(pattern) for pattern in patterns}
        while pending:
            line = self.wait_for("|".join(f"(?:{p})" for p in pending), max(0.0, deadline - time.monotonic()))
            for pattern, rx in list(pending.items()):
                if rx.search(line):
                    found[pattern] = line
                    del pending[pattern]
        return [found[p] for p in patterns]

    def skip_pending(self) -> None:
        """Forget the lines printed so far: the next wait_for reads only what comes after."""
        while True:
            try:
                self._new.get_nowait()
            except queue.Empty:
                return

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def shut_down(self, timeout: float = 20.0) -> None:
        """SIGTERM, and SIGKILL if it has not exited within `timeout` (a benchmark's clean-up)."""
        try:
            self.stop(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass  # killed below
        finally:
            self.kill()


class AssistantProcess(LuxaProcess):
    """The assistant on the virtual devices (VirtualAudio's env)."""

    def __init__(self, env: dict[str, str], *args: str):
        super().__init__("--set", "audio.input_device=vmic", "--set", "audio.output_device=vspeaker",
                         "--set", "audio.playback_latency_s=0.15", *args, env=env)


def stop_daemon(proc: subprocess.Popen) -> int:
    """SIGTERM, then its exit status; SIGKILL when it has not stopped within 30 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=10)


def first_loud(samples: np.ndarray, rate: int = 16000, level: float = 0.02, after_s: float = 0.0) -> float | None:
    """Time in seconds of the first 10 ms window louder than `level` (RMS) after `after_s`."""
    win = rate // 100
    start = int(after_s * rate) // win
    for i in range(start, len(samples) // win):
        chunk = samples[i * win:(i + 1) * win]
        if float(np.sqrt(np.mean(chunk ** 2))) > level:
            return i * win / rate
    return None


def first_quiet_stretch(samples: np.ndarray, after_s: float, min_s: float, rate: int = 16000,
                        level: float = 0.003) -> float | None:
    """Start (s) of the first run of at least `min_s` quieter than `level` after `after_s`."""
    win = rate // 100
    need = int(min_s * 100)
    run = 0
    for i in range(int(after_s * rate) // win, len(samples) // win):
        quiet = float(np.sqrt(np.mean(samples[i * win:(i + 1) * win] ** 2))) < level
        run = run + 1 if quiet else 0
        if run >= need:
            return (i + 1 - run) * win / rate
    return None


def last_loud(samples: np.ndarray, rate: int = 16000, level: float = 0.02) -> float | None:
    win = rate // 100
    for i in range(len(samples) // win - 1, -1, -1):
        chunk = samples[i * win:(i + 1) * win]
        if float(np.sqrt(np.mean(chunk ** 2))) > level:
            return (i + 1) * win / rate
    return None


def _alive(pid: int) -> bool:
    """True while `pid` runs; a killed process that its parent has not reaped yet (zombie) is dead."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def have_pulseaudio() -> bool:
    return all(shutil.which(tool) for tool in ("pulseaudio", "pactl", "paplay", "parecord"))


def have_sox() -> bool:
    return shutil.which("sox") is not None
