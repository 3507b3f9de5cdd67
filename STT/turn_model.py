"""Smart-turn v3.2: hears from the audio alone whether the speaker has finished the sentence.

The model (BSD-2-Clause, Daily) is an 8.7 MB ONNX file that ships in the pipecat-ai wheel; only
the file is used (Core/models.py locates it, nothing of pipecat is imported). Its input is the
last 8 s of the utterance, left-padded with zeros, normalised to zero mean and unit variance,
as Whisper's 80-bin log-mel (what pipecat's LocalSmartTurnAnalyzerV3 feeds it); the log-mel comes
from faster-whisper's own FeatureExtractor. One call costs a few tens of milliseconds on one
core, so the endpointer runs it on the judge's own thread, never on the event loop.
"""
from __future__ import annotations

import functools
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from Core import models
from Core.errors import ModelMissingError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW_S = 8
WINDOW = WINDOW_S * SAMPLE_RATE
NORM_EPS = 1e-7  # transformers' WhisperFeatureExtractor, do_normalize=True


@functools.lru_cache(maxsize=2)
def _session(path: Path):
    """One session per model file and process: run() is thread-safe, and each judge has its own thread."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1  # 2 cores shared with STT, the LLM and TTS
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting between calls
    opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 4
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"], sess_options=opts)
    # the first run allocates its buffers (about twice as slow): pay it at start-up, not in the first turn
    session.run(None, {"input_features": features(np.zeros(SAMPLE_RATE, np.float32))})
    return session


@functools.lru_cache(maxsize=1)
def _features():
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor(chunk_length=WINDOW_S)


def features(samples: np.ndarray) -> np.ndarray:
    """(1, 80, 800) log-mel of the last 8 s, as pipecat computes it for this model."""
    x = np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    x = x[-WINDOW:]
    x = np.pad(x, (WINDOW - len(x), 0))  # left: the end of the utterance is what the model judges
    x = (x - x.mean()) / np.sqrt(x.var() + NORM_EPS)
    # padding=0: the window is already exactly 8 s; the extractor drops the last STFT frame -> 800
    return _features()(x, padding=0)[np.newaxis].astype(np.float32)


class TurnJudge:
    """Probability that an utterance is a complete turn; calls run one at a time on a private thread."""

    def __init__(self, path: Path, name: str = "smart-turn-v3.2"):
        self.name = name
        self._session = _session(path)
        self._executor: ThreadPoolExecutor | None = None
        self.timings_ms: list[float] = []  # per call, for benchmarks and the log

    @classmethod
    def load(cls, name: str, models_dir: str = "models") -> TurnJudge:
        """The configured model; ModelMissingError (one line) when its file is not installed."""
        info = models.resolve(name, "turn", models_dir)
        return cls(info.path, name)

    def probability(self, samples: np.ndarray) -> float:
        """Blocking: P(the speaker has finished). Empty audio is judged as silence."""
        start = time.perf_counter()
        out = self._session.run(None, {"input_features": features(samples)})
        self.timings_ms.append((time.perf_counter() - start) * 1000)
        del self.timings_ms[:-1000]  # a daemon judges for days
        p = float(np.asarray(out[0]).reshape(-1)[0])
        return p if np.isfinite(p) else 0.0

    def submit(self, samples: np.ndarray) -> Future[float]:
        """The judgement of `samples` on the judge's thread (started on first use)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turn-judge")
        return self._executor.submit(self.probability, np.array(samples, dtype=np.float32, copy=True))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


_warned: set[str] = set()


def load_or_none(name: str | None, models_dir: str = "models") -> TurnJudge | None:
    """The judge, or None (with one log line per process) so that the endpointer falls back to a
    fixed silence: a Wyoming server makes an endpointer per request and must not repeat it each time."""
    if not name:
        return None
    try:
        return TurnJudge.load(name, models_dir)
    except ModelMissingError as err:
        if name not in _warned:
            _warned.add(name)
            log.warning("end-of-turn model unavailable, ending turns after a fixed silence: %s", err)
        return None
