"""Fault injection into the backends of a live Assistant, and undoing it ("lifting" the fault).

Subprocess engines (piper_cli, espeak-ng) fail for real: their configured executables are
wrapper scripts in a temporary folder, rewritten to exit non-zero, hang, kill themselves or
print garbage; their voice file is replaced with junk. In-process engines fail for real where a
file can do it (a missing or corrupt model that has to be loaded again); raising, hanging and
garbage output of the Python backends are monkeypatched, as the brief allows.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import stat
import sys
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from Core.audio import Audio
from Core.models import resolve
from STT import Decoded

HANG_TIMEOUT_S = 1.5  # the member's timeout while it hangs: the hang is "past its timeout"
HANG_CAP_S = 120.0  # a hung worker thread is released at the latest after this (never wedge the run)
SECOND_GGUF = "smollm2-second.gguf"
VOICE = "en_US-joe-medium.onnx"


@dataclass(frozen=True)
class Cell:
    stage: str
    backend: str
    fault: str
    held_down: tuple[str, ...]  # backends ahead in the chain, kept failing so that `backend` serves
    expected: str  # who answers while the fault lasts ("none": STT heard nothing, no reply)


def write_script(path: Path, body: str) -> None:
    """Atomic rewrite: a wrapper is never seen half-written by an engine starting at that moment."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text("#!/bin/sh\n" + body + "\n")
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR)
    os.replace(tmp, path)


class Workspace:
    """The files a fault session runs on: a second GGUF name, a Piper voice, engine wrappers."""

    def __init__(self, root: Path):
        self.root = root
        self.models = root / "models"
        self.voices = root / "voices"
        self.bin = root / "bin"
        for folder in (self.models, self.voices, self.bin):
            folder.mkdir(parents=True, exist_ok=True)
        self.real_gguf = resolve("smollm2-135m", "gguf").path
        self.second_gguf = self.models / SECOND_GGUF
        joe = resolve("en_US-joe-medium", "piper").path
        self.real_voice = joe
        self.voice = self.voices / VOICE
        shutil.copyfile(joe.with_name(joe.name + ".json"), self.voices / (VOICE + ".json"))
        self.piper = self.bin / "piper"
        self.espeak = self.bin / "espeak-ng"
        self.real_piper = Path(sys.executable).parent / "piper"
        self.real_espeak = shutil.which("espeak-ng") or "/usr/bin/espeak-ng"
        self.restore_all()

    def restore_all(self) -> None:
        self.link(self.second_gguf, self.real_gguf)
        self.link(self.voice, self.real_voice)
        write_script(self.piper, f'exec "{self.real_piper}" "$@"')
        write_script(self.espeak, f'exec "{self.real_espeak}" "$@"')

    @staticmethod
    def link(path: Path, target: Path) -> None:
        if path.is_symlink() or path.exists():
            path.unlink()  # never write through the link: it points at an installed model
        path.symlink_to(target)

    @staticmethod
    def junk(path: Path) -> None:
        if path.is_symlink() or path.exists():
            path.unlink()
        path.write_bytes(b"GGUF" + os.urandom(8192))

    def overrides(self) -> list[str]:
        return [
            "llm.backends.second.kind=gguf", f"llm.backends.second.model={self.second_gguf}",
            "llm.backends.second.priority=20",
            f"tts.voices.en.piper={self.voice}",
            f"tts.backends.piper_cli.executable={self.piper}",
            f"tts.backends.system_voice.executable={self.espeak}",
        ]


class Injector:
    """inject(cell-like (stage, backend, fault)) -> faults registered on `lifts` (an ExitStack)."""

    def __init__(self, assistant, work: Workspace):
        self.a = assistant
        self.work = work

    def member(self, stage: str, backend: str):
        return getattr(self.a, stage).chain.member(backend)

    async def inject(self, stage: str, backend: str, fault: str, mp: pytest.MonkeyPatch, lifts: ExitStack) -> None:
        member = self.member(stage, backend)
        if fault == "hang":
            mp.setattr(member, "timeout_s", HANG_TIMEOUT_S)
        await getattr(self, f"_{stage}")(member, fault, mp, lifts)

    # --- STT: faster-whisper in-process --------------------------------------------------------
    async def _stt(self, member, fault: str, mp, lifts: ExitStack) -> None:
        backend = member.backend
        if fault == "raise":
            mp.setattr(backend, "_decode", _raiser(RuntimeError("CTranslate2: decoder crashed")))
        elif fault == "hang":
            gate = _gate(lifts)
            mp.setattr(backend, "_decode", lambda *args: _blocked(gate))
        elif fault == "corrupt":  # a decoding loop, as Whisper produces on noise
            mp.setattr(backend, "_decode", lambda samples, language, options: Decoded("the " * 40, "en", 0.9))
        elif fault == "missing":  # the model folder is gone: the reload on the next request fails
            await asyncio.to_thread(backend._free)
            mp.setattr(backend, "config", backend.config.model_copy(update={"model": str(self.work.root / "no-such-whisper")}))
        else:
            raise ValueError(fault)

    # --- LLM: llama-cpp-python in-process ------------------------------------------------------
    async def _llm(self, member, fault: str, mp, lifts: ExitStack) -> None:
        backend = member.backend
        if fault == "raise":
            mp.setattr(backend, "stream", _failing_stream(RuntimeError("llama_decode returned -3")))
        elif fault == "hang":
            mp.setattr(backend, "stream", _hanging_stream(_gate(lifts)))
        elif fault in ("corrupt", "missing"):
            await backend.close()  # the next request loads the model again, from the broken file
            if backend.name == "second":  # its file is ours: break it on disk
                if fault == "corrupt":
                    self.work.junk(self.work.second_gguf)
                else:
                    self.work.second_gguf.unlink()
                lifts.callback(self.work.link, self.work.second_gguf, self.work.real_gguf)
            else:  # the installed package's file must not be touched: point the backend elsewhere
                broken = self.work.root / ("corrupt.gguf" if fault == "corrupt" else "gone.gguf")
                if fault == "corrupt":
                    self.work.junk(broken)
                mp.setattr(backend, "model", str(broken))
        else:
            raise ValueError(fault)

    # --- TTS ----------------------------------------------------------------------------------
    async def _tts(self, member, fault: str, mp, lifts: ExitStack) -> None:
        name, backend = member.name, member.backend
        if name == "piper_native":
            await self._piper_native(backend, fault, mp, lifts)
            return
        script = self.work.piper if name == "piper_cli" else self.work.espeak
        real = self.work.real_piper if name == "piper_cli" else self.work.real_espeak
        lifts.callback(write_script, script, f'exec "{real}" "$@"')
        if fault == "raise":
            write_script(script, f"echo '{name}: internal error' >&2\nexit 3")
        elif fault == "hang":  # a child that outlives the shell unless the whole group is killed
            write_script(script, "sleep 300 &\nwait")
        elif fault == "crash":
            write_script(script, "kill -9 $$")
        elif fault == "corrupt" and name == "piper_cli":  # the real piper on a junk voice file
            self.work.junk(self.work.voice)
            lifts.callback(self.work.link, self.work.voice, self.work.real_voice)
        elif fault == "corrupt":  # espeak-ng printing something that is not a WAV stream
            write_script(script, "cat >/dev/null\necho 'garbage, not a WAV stream'")
        elif fault == "missing":
            script.unlink()
        else:
            raise ValueError(fault)

    async def _piper_native(self, backend, fault: str, mp, lifts: ExitStack) -> None:
        if fault == "raise":
            mp.setattr(backend, "synthesize", _async_raiser(RuntimeError("onnxruntime: invalid input")))
        elif fault == "hang":
            gate = _gate(lifts)

            async def hung(request):
                return await asyncio.to_thread(_blocked, gate)

            mp.setattr(backend, "synthesize", hung)
        elif fault == "corrupt":
            async def nan_audio(request):
                return Audio(np.full(22050, np.nan, np.float32), 22050)

            mp.setattr(backend, "synthesize", nan_audio)
        elif fault == "missing":  # the voice file goes away and the voice has to be loaded again
            await backend.close()
            self.work.voice.unlink()
            lifts.callback(self.work.link, self.work.voice, self.work.real_voice)
        else:
            raise ValueError(fault)


def _gate(lifts: ExitStack) -> threading.Event:
    """What a hung call waits on; lifting the fault releases the worker threads it holds."""
    gate = threading.Event()
    lifts.callback(gate.set)
    return gate


def _blocked(gate: threading.Event):
    gate.wait(HANG_CAP_S)
    raise RuntimeError("released after a hang")


def _raiser(err: Exception):
    def fail(*args, **kwargs):
        raise err

    return fail


def _async_raiser(err: Exception):
    async def fail(*args, **kwargs):
        raise err

    return fail


def _failing_stream(err: Exception):
    async def stream(request, stats):
        raise err
        yield  # an async generator, like the real stream

    return stream


def _hanging_stream(gate: threading.Event):
    async def stream(request, stats):
        await asyncio.to_thread(gate.wait, HANG_CAP_S)
        yield "too late"

    return stream
