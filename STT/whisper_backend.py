"""One faster-whisper model as a fallback-chain backend: loaded once, run in its own thread.

Each backend owns a one-thread executor: a request that hangs past its timeout keeps only this
backend's thread busy (the next requests to it time out too and its breaker opens) instead of
starving the shared default pool that the other backends and stages rely on.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from Config.schema import SttBackendConfig, SttConfig
from Core.audio import STT_RATE, Audio
from Core.errors import BackendError
from Core.gpu import GpuStatus
from Core.models import resolve
from STT.short_window import max_new_tokens, short_window_model
from STT.transcript import Decoded, DecodeOptions, Segment, Word

log = logging.getLogger(__name__)

DEFAULT_OPTIONS = DecodeOptions()
# faster-whisper keeps the last (max_length // 2 - 1) tokens of a prompt; the rest of the
# prompt is the previous-text and start-of-transcript tokens.
PROMPT_OVERHEAD_TOKENS = 6
CUDA_FAILURE_MARKERS = ("cuda", "cublas", "cudnn", "out of memory")


def decode_options(stt: SttConfig, duration_s: float | None = None) -> dict[str, Any]:
    """faster-whisper options that keep decoding from running away (also used by the benchmark
    and tests as "the same settings" when calling faster-whisper directly). With the clip's
    duration the tokens are bounded too, so a loop ends early."""
    return {
        "max_new_tokens": None if duration_s is None else max_new_tokens(duration_s),
        "beam_size": stt.beam_size,
        "temperature": list(stt.temperatures),
        "compression_ratio_threshold": stt.compression_ratio_threshold,
        "log_prob_threshold": stt.log_prob_threshold,
        "no_speech_threshold": stt.no_speech_threshold,
        # Conditioning on earlier windows is how one hallucination turns into a loop.
        "condition_on_previous_text": False,
        "vad_filter": False,  # the endpointer already cut the utterance
    }


def resolve_device(requested: str, gpu: GpuStatus) -> str:
    if requested == "auto":
        return "cuda" if gpu.on_gpu else "cpu"
    if requested == "cuda" and not gpu.on_gpu:
        raise BackendError(f"device cuda requested but no usable GPU ({gpu.reason or 'none found'})")
    return requested


def is_cuda_failure(err: BaseException) -> bool:
    text = str(err).lower()
    return any(marker in text for marker in CUDA_FAILURE_MARKERS)


class _LanguageSpy:
    """Stands in for the CTranslate2 model and remembers the language it detects.

    faster-whisper's `transcribe(language=None)` runs the encoder once to detect the language and
    again to decode: on a CPU that doubles the time of a short command. With `multilingual=True`
    it detects the language per window from the encoder output it decodes with, but does not
    report it; this wrapper catches it, so one encoder pass does both.

    It also keeps detection to `allowed` (stt.languages): on a one- or two-word command Whisper
    often names a language nobody speaks here and then writes that language ("be quiet" came
    back as Chinese digits); the likeliest allowed language is decoded instead.
    """

    def __init__(self, inner, allowed: list[str] | None = None):
        self._inner = inner
        self._allowed = {f"<|{code}|>" for code in allowed or []}
        self.detected: tuple[str, float] | None = None

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def detect_language(self, *args, **kwargs):
        results = self._inner.detect_language(*args, **kwargs)
        if self._allowed:
            results = [[pair for pair in ranked if pair[0] in self._allowed] or ranked for ranked in results]
        if self.detected is None and results and results[0]:
            token, probability = results[0][0]
            self.detected = (token.strip("<|>"), float(probability))
        return results


class WhisperBackend:
    def __init__(self, name: str, backend: SttBackendConfig, stt: SttConfig, models_dir: str, gpu: GpuStatus):
        self.name = name
        self.config = backend
        self.stt = stt
        self.models_dir = models_dir
        self.gpu = gpu
        self.device: str | None = None
        self._model = None
        self._lock = threading.Lock()  # one request at a time per model; also guards load/free
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"stt-{name}")

    @property
    def loaded(self) -> bool:
        return self._model is not None

    async def load(self) -> None:
        await self._run(self._ensure_loaded)

    async def warm_up(self) -> None:
        """Decode half a second of faint noise so the first real request does not pay for
        CTranslate2's lazy allocations."""
        noise = np.random.default_rng(0).normal(0.0, 0.01, STT_RATE // 2).astype(np.float32)
        await self._run(self._decode, noise, "en" if self.stt.language is None else self.stt.language)

    @property
    def multilingual(self) -> bool:
        """Whether it can hear other languages than English and translate (the .en models cannot)."""
        if self._model is not None:
            return bool(self._model.model.is_multilingual)
        return not self.config.model.endswith(".en")

    async def transcribe(self, audio: Audio, language: str | None,
                         options: DecodeOptions = DEFAULT_OPTIONS) -> Decoded:
        return await self._run(self._decode, audio.samples, language, options)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        try:
            # Not through the executor: a hung request would keep close() waiting behind it.
            async with asyncio.timeout(self.config.timeout_s):
                await asyncio.to_thread(self._free)
        except TimeoutError:
            log.warning("STT %s still busy at close: its model goes with the process", self.name)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _ensure_loaded(self):
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self):
        self.device = resolve_device(self.config.device, self.gpu)
        info = resolve(self.config.model, "whisper", self.models_dir)
        log.info("loading STT %s: %s on %s (%s)", self.name, info.path, self.device, self.config.compute_type)
        try:
            # faster-whisper is imported in there: heavy, and only after the GPU is pinned
            model = short_window_model(self.stt.window_padding_s, self.stt.window_min_s, str(info.path),
                                       device=self.device, compute_type=self.config.compute_type,
                                       cpu_threads=self.stt.threads, local_files_only=True)
        except (RuntimeError, ValueError, OSError) as err:
            raise BackendError(f"cannot load {self.config.model} on {self.device}: {err}") from err
        if model.model.is_multilingual:
            model.model = _LanguageSpy(model.model, self.stt.languages)
        return model

    def _decode(self, samples: np.ndarray, language: str | None,
                options: DecodeOptions = DEFAULT_OPTIONS) -> Decoded:
        model = self._ensure_loaded()
        with self._lock:
            try:
                spy = model.model if isinstance(model.model, _LanguageSpy) else None
                settings = self._settings(model, options, len(samples) / STT_RATE)
                if language is None and spy is not None:
                    spy.detected = None  # detect from the decoding pass itself (see _LanguageSpy)
                    segments, info = model.transcribe(samples, language="en", multilingual=True, **settings)
                else:
                    segments, info = model.transcribe(samples, language=language, **settings)
                kept = tuple(_segment(s) for s in segments)
                text = " ".join(s.text.strip() for s in kept).strip()
                if language is None and spy is not None and spy.detected is not None:
                    return Decoded(text, *spy.detected, kept)
            except RuntimeError as err:
                if self.device == "cuda" and is_cuda_failure(err):
                    self._free_locked()  # a poisoned CUDA context: drop it, reload on the next probe
                    raise BackendError(f"CUDA failure in {self.name}, model freed: {err}") from err
                raise
        return Decoded(text, info.language, float(info.language_probability), kept)

    def _settings(self, model, options: DecodeOptions, duration_s: float) -> dict[str, Any]:
        """decode_options with the caller's task, prompt, temperature and word timing."""
        settings = decode_options(self.stt, duration_s)
        if options.task == "translate" and not model.model.is_multilingual:
            raise BackendError(f"{self.name} ({self.config.model}) is English-only and cannot translate")
        settings.update(task=options.task, word_timestamps=options.word_timestamps)
        if options.temperature:  # 0 keeps the fallback ladder, as in OpenAI's API
            settings["temperature"] = [options.temperature]
        if options.prompt:
            prompt_tokens = len(model.hf_tokenizer.encode(" " + options.prompt.strip()).ids)
            allowance = PROMPT_OVERHEAD_TOKENS + min(prompt_tokens, model.max_length // 2 - 1)
            settings.update(initial_prompt=options.prompt,
                            max_new_tokens=max_new_tokens(duration_s, allowance))
        return settings

    def _free(self) -> None:
        with self._lock:
            self._free_locked()

    def _free_locked(self) -> None:
        if self._model is not None:
            log.info("freeing STT model %s", self.name)
            self._model = None
            gc.collect()  # CTranslate2 releases device memory when the model object dies


def _segment(s) -> Segment:
    words = tuple(Word(round(float(w.start), 3), round(float(w.end), 3), w.word, round(float(w.probability), 4))
                  for w in (s.words or ()))
    return Segment(s.id, s.seek, round(float(s.start), 3), round(float(s.end), 3), s.text, tuple(s.tokens), float(s.temperature),
                   float(s.avg_logprob), float(s.compression_ratio), float(s.no_speech_prob), words)
