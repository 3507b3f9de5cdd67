"""The OpenAI routes' own pieces without a daemon: subtitles, the audio encoders, session names."""
from __future__ import annotations

import io

import av
import numpy as np
import pytest

from Core.audio import Audio
from Orchestrator.api import audio_formats, subtitles
from Orchestrator.api.openai_chat import _session_id
from STT.transcript import Segment


def _segment(start: float, end: float, text: str) -> Segment:
    return Segment(0, 0, start, end, text, (), 0.0, -0.1, 1.0, 0.01)


def test_subtitles_count_hours_and_milliseconds_and_parse_back():
    segments = [_segment(0.0, 1.5, " Hello there."), _segment(3661.25, 3662.0, " An hour later.")]
    srt = subtitles.srt(segments)
    assert "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n" in srt
    assert "2\n01:01:01,250 --> 01:01:02,000\nAn hour later.\n" in srt
    vtt = subtitles.vtt(segments)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n")
    for text, fmt in ((srt, "srt"), (vtt, "webvtt")):  # FFmpeg's own demuxers read them
        with av.open(io.BytesIO(text.encode()), format=fmt) as container:
            assert len([p for p in container.demux(container.streams.subtitles[0]) if p.size]) == 2


@pytest.mark.parametrize("name", list(audio_formats.FORMATS))
def test_every_format_encodes_piece_by_piece_and_decodes_to_the_same_length(name):
    rate = 22050
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate)).astype(np.float32)
    encoder = audio_formats.Encoder(name)
    pieces = [encoder.feed(Audio(part, rate)) for part in np.array_split(tone, 4)]
    data = b"".join(pieces) + encoder.finish()
    assert pieces[0]  # bytes leave with the first piece, before the last is fed
    if name == "pcm":
        seconds = len(data) / 2 / 24000
    else:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.audio[0]
            seconds = sum(frame.samples for frame in container.decode(stream)) / stream.rate
    assert seconds == pytest.approx(2.0, abs=0.1)


def test_the_whole_wav_has_exact_lengths_and_the_streamed_one_an_open_length():
    audio = Audio(np.zeros(22050, np.float32) + 0.1, 22050)
    assert audio_formats.encode_whole(audio, "wav")[4:8] != b"\xff\xff\xff\xff"
    assert audio_formats.Encoder("wav").feed(audio)[4:8] == b"\xff\xff\xff\xff"


def test_a_user_name_becomes_a_session_id():
    assert _session_id("kitchen-tablet") == "kitchen-tablet"
    hashed = _session_id("ada@example.org")
    assert hashed != "ada@example.org" and hashed == _session_id("ada@example.org") and len(hashed) <= 64
    assert _session_id(None) is None


@pytest.mark.parametrize("enabled", [True, False])
def test_the_openai_routes_are_mounted_only_when_enabled(enabled):
    from types import SimpleNamespace

    from Config.schema import LuxaConfig, OpenAIConfig
    from Orchestrator.api.app import create_app

    config = LuxaConfig(openai=OpenAIConfig(enabled=enabled))
    tts = SimpleNamespace(left_out={}, chain=SimpleNamespace(members=[]))
    assistant = SimpleNamespace(config=config, llm=SimpleNamespace(new_conversation=object), tts=tts)
    paths = set(create_app(assistant, config.api, "k" * 32, dict).openapi()["paths"])
    openai_paths = {"/v1/audio/transcriptions", "/v1/audio/translations", "/v1/audio/speech",
                    "/v1/audio/voices", "/v1/audio/models", "/v1/chat/completions"}
    assert (openai_paths <= paths) is enabled and (openai_paths & paths == set()) is not enabled
    assert {"/v1/say", "/v1/chat", "/v1/models"} <= paths
