"""The two baselines `bench turn` holds LUXA against, on the same endpointed utterances.

- sequential: what a naive pipeline does with the same managers: transcribe, generate the whole
  reply, synthesise all of it, then play; its first audio is when the whole reply audio is ready.
- raw floor: the engines called directly with the same models and settings (faster-whisper,
  llama-cpp-python, Piper), no managers, no threads, no fallback chains. Its sum (configured
  end-of-turn silence + STT + LLM first sentence + TTS first audio) is what a pipeline that hides
  nothing would cost; LUXA beats it only by overlapping stages (early STT, a short first chunk).

Both run strictly one after the other, never beside a LUXA turn, so they compete for no CPU.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 1)


@dataclass
class FloorSample:
    transcript: str
    sentence: str
    stt_ms: float
    llm_first_token_ms: float
    llm_first_sentence_ms: float
    tts_first_audio_ms: float
    end_silence_ms: float

    @property
    def first_audio_ms(self) -> float:
        return round(self.end_silence_ms + self.stt_ms + self.llm_first_sentence_ms + self.tts_first_audio_ms, 1)

    def as_dict(self) -> dict:
        return {**self.__dict__, "first_audio_ms": self.first_audio_ms}


class RawEngines:
    """One direct instance of each engine, loaded once, with the settings the managers use."""

    def __init__(self, config):
        from llama_cpp import Llama
        from piper import PiperVoice

        from Core.models import resolve
        from STT.short_window import short_window_model

        self.config = config
        stt = _first_enabled(config.stt.backends)
        llm = _first_enabled(config.llm.backends)
        # The same encoder window as LUXA (stt.window_padding_s), so that the ratio to this floor
        # measures our machinery and not that setting (bench stt compares the windows).
        self.whisper = short_window_model(config.stt.window_padding_s, config.stt.window_min_s,
                                          str(resolve(stt.model, "whisper", config.models.dir).path), device="cpu",
                                          compute_type=stt.compute_type, cpu_threads=config.stt.threads,
                                          local_files_only=True)
        self.llama = Llama(model_path=str(resolve(llm.model, "gguf", config.models.dir).path),
                           n_ctx=config.llm.context_tokens, n_threads=config.llm.threads,
                           n_threads_batch=config.llm.threads, verbose=False)
        voice = config.tts.voices[config.tts.default_language].piper
        self.piper = PiperVoice.load(resolve(voice, "piper", config.models.dir).path)

    def warm_up(self) -> None:
        """First calls pay lazy allocations; a turn in a running assistant never does."""
        self.run(np.random.default_rng(0).normal(0.0, 0.01, 8000).astype(np.float32), "en",
                 self.config.llm.system_prompt, "Hello there.")

    def transcribe(self, samples: np.ndarray, language: str) -> tuple[str, float]:
        from Core.audio import STT_RATE
        from STT.whisper_backend import decode_options

        options = decode_options(self.config.stt, len(samples) / STT_RATE)  # outside the timed span
        start = time.perf_counter()
        segments, _ = self.whisper.transcribe(samples, language=language, **options)
        text = " ".join(s.text.strip() for s in segments).strip()
        return text, _ms(start)

    def first_sentence(self, text: str, system_prompt: str) -> tuple[str, float, float]:
        """(first sentence, ms to first token, ms to the end of the first sentence)."""
        from Core.sentences import SentenceChunker

        llm = self.config.llm
        messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": text}]
        chunker = SentenceChunker(first_chunk_max_words=None)  # plain sentence boundaries
        start = time.perf_counter()
        first_token, sentence = None, None
        stream = self.llama.create_chat_completion(
            messages=messages, max_tokens=llm.max_tokens, temperature=llm.temperature, top_p=llm.top_p,
            stop=list(llm.stop), repeat_penalty=llm.repeat_penalty, stream=True)
        try:
            for chunk in stream:
                piece = chunk["choices"][0]["delta"].get("content")
                if not piece:
                    continue
                first_token = first_token if first_token is not None else _ms(start)
                done = chunker.feed(piece)
                if done:
                    sentence = done[0]
                    break
        finally:
            stream.close()
        if sentence is None:
            sentence = " ".join(chunker.flush()) or "Sorry."
        elapsed = _ms(start)
        return sentence, first_token if first_token is not None else elapsed, elapsed

    def first_audio(self, sentence: str) -> float:
        start = time.perf_counter()
        chunks = iter(self.piper.synthesize(sentence))
        try:
            next(chunks, None)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        return _ms(start)

    def run(self, samples: np.ndarray, language: str, system_prompt: str, fallback_text: str = "Hello.") -> FloorSample:
        text, stt_ms = self.transcribe(samples, language)
        sentence, token_ms, sentence_ms = self.first_sentence(text or fallback_text, system_prompt)
        return FloorSample(text, sentence, stt_ms, token_ms, sentence_ms, self.first_audio(sentence),
                           float(self.config.vad.end_silence_ms))


async def sequential_turn(assistant, utterance, conversation) -> dict:
    """Transcribe, then the whole reply, then all of its audio: first audio = all of it ready."""
    if assistant.tts.cache is not None:
        assistant.tts.cache.clear()  # a real synthesis, as for the LUXA turn
    wait = float(assistant.config.vad.end_silence_ms)
    start = time.perf_counter()
    transcript = await assistant.stt.transcribe(utterance)  # detects, as a turn does
    stt_ms = _ms(start)
    chat = await assistant.llm.chat(transcript.text or "Hello.", conversation, transcript.language)
    llm_ms = _ms(start)
    spoken = await assistant.tts.synthesize(chat.reply, language=transcript.language)
    ready_ms = _ms(start)
    return {"transcript": transcript.text, "reply": chat.reply, "stt_ms": stt_ms, "llm_done_ms": llm_ms,
            "tts_done_ms": ready_ms, "tts_backend": spoken.backend,
            "first_audio_ms": round(wait + ready_ms, 1)}


def _first_enabled(backends: dict):
    enabled = sorted((b for b in backends.values() if b.enabled), key=lambda b: b.priority)
    if not enabled:
        from Core.errors import LuxaError

        raise LuxaError("bench: a stage has no enabled backend")
    return enabled[0]
