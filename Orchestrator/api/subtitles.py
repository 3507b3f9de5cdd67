"""Transcript segments as SubRip (srt) and WebVTT (vtt) subtitles."""
from __future__ import annotations

from collections.abc import Iterable

from STT.transcript import Segment


def _clock(seconds: float, decimal: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def srt(segments: Iterable[Segment]) -> str:
    cues = [f"{n}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n"
            for n, s in enumerate(segments, start=1)]
    return "\n".join(cues)


def vtt(segments: Iterable[Segment]) -> str:
    cues = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n" for s in segments]
    return "\n".join(["WEBVTT\n", *cues])
