"""The Qwen3-TTS voice-clone backend: speaks in a voice given by a few seconds of reference audio.

A voice is a stored prompt (TTS.voice_prompts): the reference is processed once, when the voice
is created, and every sentence after that only generates. Each Base model size is loaded once
and kept (TTS.qwen_engine): the configured size when the backend starts (only if enabled, never
at import or for `voices list`), the other size when a voice made with it is first used. A
configured default voice is prepared in the background after start-up; until it is ready this
backend skips requests that name no voice, so start-up never waits for it.

With `qwen_tts` not installed the manager leaves this backend out of the chain with one warning.
"""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from dataclasses import replace
from pathlib import Path

from Config.schema import LuxaConfig, TtsBackendConfig
from Core.audio import Audio
from Core.errors import BackendError, LuxaError
from Core.gpu import GpuStatus
from TTS.base import SpeechRequest, TtsBackend
from TTS.clone_reference import load_reference
from TTS.qwen_engine import INSTALL_HINT, QwenCloneEngine, model_folder
from TTS.voice_prompts import VoicePrompt, VoicePromptError, VoicePromptStore

log = logging.getLogger(__name__)


def prompt_store(config: LuxaConfig) -> VoicePromptStore:
    """The store named by tts.clone.prompt_store_dir (relative: under service.state_dir)."""
    clone = config.tts.clone
    directory = Path(clone.prompt_store_dir).expanduser()
    if not directory.is_absolute():
        directory = Path(config.service.state_dir).expanduser() / directory
    return VoicePromptStore(directory, clone.max_prompts, clone.prompt_ttl_s)


def enable_for_voice(config: LuxaConfig, voice: str | None) -> LuxaConfig:
    """Naming a stored clone voice (`say --voice ID`) turns the backend on for that run, with the
    model size the voice was made with: asking for the voice is consent enough, and
    tts.backends.qwen_clone.enabled stays false by default."""
    backend = config.tts.backends.get("qwen_clone")
    store = prompt_store(config)
    if not voice or backend is None or not store.exists(voice):
        return config
    try:
        size = store.get(voice)[0].model_size  # start() then loads the model this voice was made with
    except VoicePromptError:
        return config  # expired: the chain reports it
    backends = {**config.tts.backends, "qwen_clone": backend.model_copy(update={"enabled": True})}
    clone = config.tts.clone.model_copy(update={"model_size": size})
    return config.model_copy(update={"tts": config.tts.model_copy(update={"backends": backends, "clone": clone})})


class QwenCloneBackend(TtsBackend):
    name = "qwen_clone"

    def __init__(self, config: LuxaConfig, backend_config: TtsBackendConfig, gpu: GpuStatus) -> None:
        super().__init__(config, backend_config, gpu)
        self.clone = config.tts.clone
        self.store = prompt_store(config)
        self._engines: dict[str, QwenCloneEngine] = {}
        self._engines_lock = threading.Lock()  # the default voice and a first request must not load twice
        self._default_id: str | None = None
        self._default_task: asyncio.Task | None = None

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("qwen_tts") is None:  # find_spec: never import torch just to check
            return f"the qwen_tts package is not installed; {INSTALL_HINT}"
        return None

    async def start(self) -> None:
        """Load the configured size now (outside any per-sentence timeout: importing torch and
        loading weights takes seconds), then prepare the default voice in the background."""
        await asyncio.to_thread(self.engine, self.clone.model_size)
        default = self.clone.default_voice
        if default.audio and default.text:
            self._default_task = asyncio.create_task(self._prepare_default(default.audio, default.text))

    def accepts_voice(self, voice: str) -> bool:
        return self.store.exists(voice)

    def voice_for(self, request: SpeechRequest) -> str | None:
        return request.voice or request.clone_voice or self._default_id

    async def synthesize(self, request: SpeechRequest) -> Audio:
        return await asyncio.to_thread(self.speak, self.voice_for(request), request.text, request.language)

    async def close(self) -> None:
        if self._default_task is not None:
            self._default_task.cancel()
            await asyncio.gather(self._default_task, return_exceptions=True)
        self._engines.clear()

    # --- blocking API (worker threads, and the `voices` command) -----------------------------

    def speak(self, voice_id: str | None, text: str, language: str) -> Audio:
        if voice_id is None:
            raise LuxaError("no clone voice: name one with --voice ID or set tts.voices.<language>.clone")
        prompt, data = self.store.get(voice_id)
        return self.engine(prompt.model_size).speak(text, language, data, prompt.ref_text)

    def create_voice(self, reference_path: str | Path, text: str, model_size: str | None = None,
                     language: str | None = None) -> VoicePrompt:
        """Process the reference once and store the prompt; scores the clone when configured."""
        missing = self.unavailable()
        if missing:  # say so before judging the recording: nothing can be done without the package
            raise BackendError(f"cannot clone voices: {missing}")
        text = " ".join(text.split())
        if not text:
            raise LuxaError("the reference transcript is empty: give the exact words of the recording with --text")
        size = model_size or self.clone.model_size
        reference = load_reference(reference_path, self.clone)
        engine = self.engine(size)
        data = engine.make_prompt(reference, text)
        prompt = self.store.add(data, size, text, str(Path(reference_path).resolve()))
        log.info("voice prompt %s created (%s, %.1f s of reference)", prompt.id, size, reference.duration_s)
        if self.clone.similarity_check:
            prompt = self._score(prompt, data, reference, language or self.config.tts.default_language)
        return prompt

    def engine(self, size: str) -> QwenCloneEngine:
        with self._engines_lock:
            if size not in self._engines:
                folder = model_folder(self.clone, size, self.config.models.dir)
                self._engines[size] = QwenCloneEngine(folder, size, self.clone, self.gpu)
            return self._engines[size]

    def _score(self, prompt: VoicePrompt, data, reference: Audio, language: str) -> VoicePrompt:
        from TTS.similarity import SIMILARITY, similarity

        sample = self.engine(prompt.model_size).speak(prompt.ref_text, language, data, prompt.ref_text)
        try:
            score = similarity(reference, sample).score
        except LuxaError as err:  # a silent sample cannot be measured: that itself says the clone failed
            log.warning("voice %s: similarity not measured: %s", prompt.id, err)
            return prompt
        SIMILARITY.set(score)
        if score < self.clone.similarity_threshold:
            log.warning("voice %s sounds unlike its reference: similarity %.2f < tts.clone.similarity_threshold "
                        "%.2f (try a cleaner or longer recording)", prompt.id, score, self.clone.similarity_threshold)
        scored = replace(prompt, similarity=round(score, 3))
        self.store.update(scored, data)
        return scored

    async def _prepare_default(self, audio: str, text: str) -> None:
        size = self.clone.model_size
        try:
            existing = self.store.find(size, str(Path(audio).resolve()), " ".join(text.split()))
            prompt = existing if existing is not None else await asyncio.to_thread(self.create_voice, audio, text, size)
            if existing:  # load the model now rather than at the first sentence
                await asyncio.to_thread(self.engine, size)
        except LuxaError as err:
            log.error("default clone voice %s not prepared: %s", audio, err)
            return
        self._default_id = prompt.id
        log.info("default clone voice ready: %s", prompt.id)
