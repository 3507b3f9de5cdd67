"""Silero VAD v6 streamed window by window on onnxruntime (no torch).

The model file is the copy that faster-whisper ships; it is located with find_spec so that
neither faster-whisper (which pulls CTranslate2) nor the silero-vad package (which pulls torch)
is imported. The feeding follows faster_whisper.vad.SileroVADModel: 512-sample windows at
16 kHz, each preceded by the last 64 samples of the previous window, LSTM state (h, c) carried
from window to window. faster-whisper resets that state on every call, so its class cannot
stream; this one keeps it between calls.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from Core.errors import ModelMissingError

SAMPLE_RATE = 16000
WINDOW = 512
CONTEXT = 64
STATE_SHAPE = (1, 1, 128)
MODEL_FILE = "assets/silero_vad_v6.onnx"


def model_path() -> Path:
    spec = importlib.util.find_spec("faster_whisper")
    roots = list(spec.submodule_search_locations or []) if spec else []
    path = Path(roots[0]) / MODEL_FILE if roots else None
    if path is None or not path.is_file():
        raise ModelMissingError("Silero VAD model not found: it ships with faster-whisper; reinstall faster-whisper")
    return path


@functools.lru_cache(maxsize=1)
def session():
    """One onnxruntime session per process: run() is thread-safe and the state lives in SileroStream."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1  # a 32 ms window is too small to gain from threads
    opts.intra_op_num_threads = 1
    opts.enable_cpu_mem_arena = False
    opts.log_severity_level = 4
    return onnxruntime.InferenceSession(str(model_path()), providers=["CPUExecutionProvider"], sess_options=opts)


class SileroStream:
    """Speech probability of a continuous 16 kHz stream, fed in pieces of any length."""

    def __init__(self) -> None:
        self._session = session()
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros(STATE_SHAPE, np.float32)
        self._c = np.zeros(STATE_SHAPE, np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)

    def feed(self, samples: np.ndarray) -> float | None:
        """Run every window completed by `samples`; the last window's probability, or None."""
        self._pending = np.concatenate([self._pending, samples])
        probability = None
        while len(self._pending) >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            batch = np.concatenate([self._context, window])[np.newaxis, :]
            out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
            self._context = window[-CONTEXT:]
            probability = float(out.reshape(-1)[0])
        return probability

    def skip(self, samples: np.ndarray) -> None:
        """Advance over audio without running the model (the cheap gate said silence): keep the
        window alignment and context exact, and forget the speech state, which is stale now."""
        self._pending = np.concatenate([self._pending, samples])
        full = len(self._pending) // WINDOW * WINDOW
        if full:
            self._context = self._pending[full - CONTEXT:full]
            self._pending = self._pending[full:]
        self._h.fill(0.0)
        self._c.fill(0.0)
