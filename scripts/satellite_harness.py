"""Real wyoming-satellite processes on private PulseAudio devices: the e2e test and `bench satellites` share this.

Each room is a pair of null sinks on the VirtualAudio server: a question played into `<room>_mic`
is what the satellite records (parecord of its monitor), and what the satellite plays goes into
`<room>_spk` (pacat), whose monitor the caller records. wyoming-satellite 1.0.0 runs from its own
venv (scripts/satellite_venv.sh: it pins an older wyoming than LUXA's).
"""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from audio_harness import REPO_ROOT, VirtualAudio


def satellite_python() -> str:
    """The satellite venv's python (installed on first use); RuntimeError with pip's words if that fails."""
    out = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "satellite_venv.sh")], capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"wyoming-satellite could not be installed: {out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_room_devices(audio: VirtualAudio, room: str) -> None:
    """`<room>_mic` and `<room>_spk`, each kept awake by the server's silence (an idle null sink
    sleeps in 2 s blocks and loses the start of a signal)."""
    for dev in (f"{room}_mic", f"{room}_spk"):
        audio.pactl("load-module", "module-null-sink", f"sink_name={dev}", "rate=16000", "channels=1")
        audio.pactl("load-module", "module-loopback", "source=silence", f"sink={dev}", "latency_msec=200")


class Satellite:
    """`python -m wyoming_satellite` for one room, its mic and speaker on the room's devices.

    `zeroconf=True` lets it advertise itself as `_wyoming._tcp` (its default); the tests that
    configure it by URI turn that off."""

    def __init__(self, python: str, audio: VirtualAudio, room: str, port: int, log: Path,
                 zeroconf: bool = False) -> None:
        self.python, self.audio, self.room, self.port, self.log = python, audio, room, port, log
        self.zeroconf = zeroconf
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> None:
        pcm = "--raw --format=s16le --rate=16000 --channels=1"
        # advertised as `<room>._wyoming._tcp` at this machine's network address: it listens on all
        advertise = ["--uri", f"tcp://0.0.0.0:{self.port}", "--zeroconf-name", self.room] if self.zeroconf \
            else ["--uri", self.uri, "--no-zeroconf"]
        cmd = [self.python, "-m", "wyoming_satellite", "--name", self.room, *advertise, "--debug",
               "--mic-command", f"parecord --device={self.room}_mic.monitor --latency-msec=30 {pcm}",
               "--snd-command", f"pacat --playback --device={self.room}_spk --latency-msec=200 {pcm}",
               "--snd-command-rate", "16000"]
        self.proc = subprocess.Popen(cmd, env=self.audio.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"satellite {self.room} exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"satellite {self.room} never listened on {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def rooms_setting(sats: dict[str, Satellite]) -> str:
    """The `--set` value that makes LUXA host these satellites."""
    rooms = ", ".join(f'{{name: {r}, uri: "{s.uri}"}}' for r, s in sats.items())
    return f"satellites.rooms=[{rooms}]"
