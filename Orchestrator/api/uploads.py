"""Request bodies: the content type a route accepts, and uploaded audio turned into Audio."""
from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

from fastapi import Request, UploadFile

from Core.audio import Audio, load_audio
from Core.errors import AudioInputError
from Orchestrator.api.errors import ApiError

JSON = "application/json"
MULTIPART = "multipart/form-data"
# Only the suffix of the client's file name is used (FFmpeg guesses some containers by it).
_SAFE_SUFFIX = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".webm", ".aiff", ".aif"}


def content_type(expected: str) -> Callable[[Request], None]:
    """A route dependency: 415 unless the request declares `expected`."""

    def check(request: Request) -> None:
        declared = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if declared != expected:
            raise ApiError(415, "unsupported_media_type",
                           f"this route takes {expected}, not {declared or 'a body without Content-Type'}")

    return check


async def read_audio(upload: UploadFile, max_bytes: int, field: str = "file") -> Audio:
    """The upload decoded to mono float32, or 413/422 with the one-line reason."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, "too_large", f"{field} is above api.max_audio_bytes={max_bytes}")
    if not data:
        raise ApiError(422, "invalid_audio", f"{field} is empty")
    name = upload.filename or field
    try:
        audio = await asyncio.to_thread(_decode, data, Path(name).suffix.lower())
    except AudioInputError as err:
        raise ApiError(422, "invalid_audio", f"{field} ({name}): {err}") from None
    return audio  # silence, NaN, length: each consumer checks against its own thresholds


def _decode(data: bytes, suffix: str) -> Audio:
    """Through a temporary file: load_audio (libsndfile, then FFmpeg) reads paths."""
    suffix = suffix if suffix in _SAFE_SUFFIX else ".bin"
    with tempfile.TemporaryDirectory(prefix="luxa-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return load_audio(path)
        except AudioInputError as err:  # it names our temporary path, which means nothing to the client
            raise AudioInputError(str(err).replace(f" {path}", "")) from None
