"""The operating system's own voice: robotic, but present on every machine and fast.

espeak-ng on Linux (WAV on stdout), `say` on macOS (to a temporary file: it cannot write a
pipe), SAPI on Windows through comtypes. Only the espeak-ng path is tested on this project's
machines; the macOS and Windows paths are written to their documented interfaces but unverified.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from Core.audio import Audio, load_audio
from Core.errors import BackendError
from TTS.base import SpeechRequest, TtsBackend
from TTS.process import parse_wav_stream, run_engine

ESPEAK_WPM = 175  # espeak-ng's own default rate: speed 1.0 keeps it
SAY_WPM = 185  # macOS `say` default rate
SAPI_CREATE_FOR_WRITE = 3


def _engine() -> str:
    return {"win32": "sapi", "darwin": "say"}.get(sys.platform, "espeak-ng")


class SystemVoiceBackend(TtsBackend):
    name = "system_voice"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.engine = _engine()
        self._espeak_voices: frozenset[str] = frozenset()
        # looked up once: PATH searches cost more than a cache hit is allowed to
        self._executable = self.backend_config.executable or shutil.which(self.engine) or self.engine

    def executable(self) -> str:
        return self._executable

    async def start(self) -> None:
        if self.engine == "sapi":
            try:
                import comtypes.client  # noqa: F401
            except ImportError:
                raise BackendError("SAPI needs the comtypes package (pip install comtypes)") from None
            return
        if not (Path(self.executable()).is_file() or shutil.which(self.executable())):
            hint = " (apt-get install espeak-ng)" if self.engine == "espeak-ng" else ""
            raise BackendError(f"{self.engine} not found: {self.executable()}{hint}")
        if self.engine == "espeak-ng":
            listing = await run_engine([self.executable(), "--voices"], b"")
            self._espeak_voices = _espeak_voice_names(listing.decode("utf-8", "replace"))

    def accepts_voice(self, voice: str) -> bool:
        return voice.lower() in self._espeak_voices  # the other engines take configured voices only

    def voice_for(self, request: SpeechRequest) -> str | None:
        # a language without a configured voice still gets espeak-ng's voice of that name
        return request.voice or request.system_voice or request.language

    def cache_key(self, request: SpeechRequest) -> tuple:
        return super().cache_key(request) + (self.engine, self.executable())

    async def synthesize(self, request: SpeechRequest) -> Audio:
        voice = self.require_voice(request)
        if self.engine == "espeak-ng":
            argv = [self.executable(), "-v", voice, "-s", str(round(ESPEAK_WPM * request.speed)), "-b", "1", "--stdout"]
            return parse_wav_stream(await run_engine(argv, request.text.encode("utf-8")))
        if self.engine == "say":
            return await self._say(request, voice)
        return await asyncio.to_thread(_sapi_speak, request.text, voice, request.speed)

    async def _say(self, request: SpeechRequest, voice: str) -> Audio:
        fd, path = tempfile.mkstemp(suffix=".wav")
        os.close(fd)
        try:
            argv = [self.executable(), "-r", str(round(SAY_WPM * request.speed)), "-o", path,
                    "--file-format=WAVE", "--data-format=LEI16@22050", "-f", "-"]
            if voice and voice != request.language:
                argv[1:1] = ["-v", voice]
            await run_engine(argv, request.text.encode("utf-8"))
            return load_audio(path)
        finally:
            Path(path).unlink(missing_ok=True)


def _espeak_voice_names(listing: str) -> frozenset[str]:
    """Language codes, voice names and file names from `espeak-ng --voices` (any of them works with -v)."""
    names = set()
    for line in listing.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5:
            names.update({cols[1].lower(), cols[3].lower(), cols[4].lower(), cols[4].rsplit("/", 1)[-1].lower()})
    return frozenset(names)


def _sapi_speak(text: str, voice: str | None, speed: float) -> Audio:
    """SAPI 5 into a temporary WAV; runs in a worker thread, which needs its own COM apartment."""
    import comtypes
    import comtypes.client

    fd, path = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    comtypes.CoInitialize()
    try:
        speaker = comtypes.client.CreateObject("SAPI.SpVoice")
        stream = comtypes.client.CreateObject("SAPI.SpFileStream")
        stream.Open(path, SAPI_CREATE_FOR_WRITE)
        speaker.AudioOutputStream = stream
        speaker.Rate = max(-10, min(10, round((speed - 1.0) * 10)))
        for token in speaker.GetVoices():
            if voice and voice.lower() in token.GetDescription().lower():
                speaker.Voice = token
                break
        speaker.Speak(text)
        stream.Close()
        return load_audio(path)
    finally:
        comtypes.CoUninitialize()
        Path(path).unlink(missing_ok=True)
