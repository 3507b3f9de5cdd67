"""Encode only the audio (plus a little padding), not Whisper's whole 30 s window.

faster-whisper pads every window to 3000 mel frames (30 s) and the encoder pays for all of them:
on a CPU a 3 s command costs as much to encode as 30 s of speech (whisper-base: 0.64 s of its
0.9 s). CTranslate2's encoder accepts shorter inputs, so the padding after the speech is cut
down to `pad_s` seconds (whisper.cpp calls the same idea `audio_ctx`). The model was trained on
full windows and with no padding at all it loops; with 4 s of it (the default), on the shared
corpus, WER stays within a word of full windows (docs/BENCHMARKS.md) while a command's STT drops
from 0.9 s to about 0.26 s.
"""
from __future__ import annotations

import collections
import hashlib
import math
from typing import Any, Callable

import numpy as np

FRAMES_PER_SECOND = 100  # Whisper mel frames (10 ms hop)
WHISPER_MAX_LENGTH = 448
# Room for the longest plausible speech: about 12 tokens a second (fast speech is under 6 words
# a second, plus timestamp tokens) and a fixed allowance for the prompt and a short clip.
TOKENS_PER_SECOND = 12
TOKENS_BASE = 16


def trim_padding(features: np.ndarray, pad_frames: int, min_frames: int = 0) -> np.ndarray:
    """Cut the zero frames faster-whisper appended to one (80, 3000) window down to
    `pad_frames`, keeping at least `min_frames` in all. Its padding is exact zeros, which a
    real log-mel frame never is."""
    if features.ndim != 2:
        return features  # a batch: left to the full-window path
    voiced = np.flatnonzero(np.any(features != 0.0, axis=0))
    content = int(voiced[-1]) + 1 if voiced.size else 1
    keep = min(features.shape[-1], max(content + pad_frames, min_frames))
    return np.ascontiguousarray(features[:, :keep]) if keep < features.shape[-1] else features


class EncoderCache:
    """The last few encoder outputs, by the features they were computed from.

    A short utterance that matches no command is decoded a second time with the commands' prompt
    (Orchestrator/hearing.py): same audio, same features, same encoder output. The encoder is most
    of a short clip's STT on a CPU (the 15 s window), and the second hearing sat between the first
    transcript and the LLM's start, so a short question waited for the encoder twice. The key is
    a hash of the features (about 0.5 ms for a 15 s window). One cache per model, and
    WhisperBackend decodes one request at a time per model, so it needs no lock of its own."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self.hits = 0
        self._entries: collections.OrderedDict[bytes, Any] = collections.OrderedDict()

    def get(self, features: np.ndarray, encode: Callable[[np.ndarray], Any]) -> Any:
        key = hashlib.blake2b(features.tobytes(), digest_size=16).digest() + repr(features.shape).encode()
        if key in self._entries:
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key]
        encoded = self._entries[key] = encode(features)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return encoded


def max_new_tokens(duration_s: float, prompt_allowance: int = 8) -> int:
    """A bound on the tokens a clip can need, so a decoding loop stops early instead of running to
    Whisper's 448 tokens (seconds of CPU per temperature retry)."""
    wanted = TOKENS_BASE + math.ceil(TOKENS_PER_SECOND * duration_s)
    return max(1, min(wanted, WHISPER_MAX_LENGTH - prompt_allowance))


def short_window_model(pad_s: float | None, min_window_s: float, *args, **kwargs):
    """A faster-whisper WhisperModel that encodes at most `pad_s` seconds of padding after the
    speech, and at least `min_window_s` in all; `pad_s=None` gives the stock model (full 30 s
    windows).

    The minimum is what keeps short commands whole: with a 2 s command plus 4 s of padding the
    decoder, never trained on windows that short, loops ("Turn on the living room light. Turn on
    the living room light. Turn on the living room") until the token bound cuts it, mid-phrase:
    the "lost last word" of a long session. Measured on 48 endpointed passes of the two corpus
    commands (-60 dBFS noise floor, random frame alignment, greedy): 16 wrong at a 5.9 s window,
    14 at 6.9 s, 2 at 7.9 s, 0 from 8.9 s on and 0 on full windows. On Piper's shorter commands
    (the 52 English lines of scripts/commands.tsv at 3 speeds and 3 levels, 468 clips) a 10 s or
    12 s window still looped or dropped a last word ("Never mind" as "Never", "What year is it?"
    as "What What", "Stop" x 14): 456 right at 10 s and at 12 s, 460 at 15 s, 463 at 20 s, and
    no loop from 15 s on. A loop costs 0.5-1.6 s of decoding and the fallback model; 15 s costs
    about +70 ms per command (STT p50 0.29 s instead of 0.22 s; full windows 0.56 s)."""
    from faster_whisper import WhisperModel

    if pad_s is None:
        return WhisperModel(*args, **kwargs)
    pad_frames = round(pad_s * FRAMES_PER_SECOND)
    min_frames = round(min_window_s * FRAMES_PER_SECOND)

    class ShortWindowWhisper(WhisperModel):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.encoded = EncoderCache()  # freed with the model (a CUDA failure drops it)

        def encode(self, features):  # faster-whisper's one place that runs the encoder
            return self.encoded.get(trim_padding(features, pad_frames, min_frames), super().encode)

    return ShortWindowWhisper(*args, **kwargs)
