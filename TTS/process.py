"""Run a speech engine as a child process without ever leaving one behind.

The child gets its own process group so that a timeout kills the whole group: an engine
started through a shell wrapper would otherwise leave the real engine running, holding the
pipe open and the CPU busy.
"""
from __future__ import annotations

import asyncio
import os
import signal
import struct
import sys

from Core.audio import Audio, mixdown, pcm16_to_float32
from Core.errors import BackendError

_POSIX = sys.platform != "win32"


async def run_engine(argv: list[str], stdin: bytes) -> bytes:
    """stdout of the process; BackendError on a non-zero exit, with stderr's last line.

    Cancellation (the chain's timeout) kills and reaps the process before re-raising.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=_POSIX,
        )
    except OSError as err:
        raise BackendError(f"cannot start {argv[0]}: {err.strerror or err}") from None
    try:
        out, errors = await proc.communicate(stdin)
    except BaseException:
        await _kill(proc)
        raise
    if proc.returncode != 0:
        lines = [line for line in errors.decode("utf-8", "replace").splitlines() if line.strip()]
        detail = lines[-1].strip() if lines else "no error output"
        raise BackendError(f"{os.path.basename(argv[0])} exited with status {proc.returncode}: {detail}")
    return out


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            if _POSIX:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
    await asyncio.shield(proc.wait())  # reap it even if we are being cancelled again


def parse_wav_stream(data: bytes) -> Audio:
    """Mono 16-bit PCM from a WAV written to a pipe.

    Engines writing to stdout cannot seek back to fill in the sizes, so the RIFF and data sizes
    are placeholders (espeak-ng writes 0x7ffff000-ish); trust only the format and read to the end.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise BackendError("engine output is not a WAV stream")
    pos = 12
    rate: int | None = None
    channels: int | None = None
    bits: int | None = None
    while pos + 8 <= len(data):
        chunk_id, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = pos + 8
        if chunk_id == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[body:body + 16])
        elif chunk_id == b"data":
            if rate is None or channels is None or bits != 16:
                raise BackendError(f"engine WAV format not supported (bits={bits}, rate={rate})")
            pcm = data[body:]
            pcm = pcm[: len(pcm) - len(pcm) % (2 * channels)]
            samples = pcm16_to_float32(pcm)
            if channels > 1:
                samples = mixdown(samples.reshape(-1, channels))
            return Audio(samples, rate)
        pos = body + size + (size & 1)
    raise BackendError("engine WAV stream has no audio data")
