"""`describe` -> `info`: what this LUXA process can really do, read from its config and chains.

Home Assistant lists models, voices and languages from this answer, and picks a voice by the
name given here, so every name is one the TTS manager accepts as `voice` and every language is
one the STT manager accepts. Built for each describe (cloned voices come and go).
"""
from __future__ import annotations

import json
import logging
from importlib import metadata
from typing import TYPE_CHECKING, cast

from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    HandleModel,
    HandleProgram,
    Info,
    TtsProgram,
    TtsVoice,
    TtsVoiceSpeaker,
)

from Core.errors import LuxaError

if TYPE_CHECKING:  # for mypy only: the daemon has loaded them
    from Config import LuxaConfig
    from Orchestrator.assistant import Assistant
    from TTS.piper_voices import PiperBackend
    from TTS.qwen_clone import QwenCloneBackend

log = logging.getLogger(__name__)

LUXA = Attribution(name="LUXA", url="")  # a local project: no public address to point to
WHISPER = Attribution(name="OpenAI Whisper (CTranslate2 via faster-whisper)", url="https://github.com/SYSTRAN/faster-whisper")
PIPER = Attribution(name="Piper (rhasspy / Open Home Foundation)", url="https://github.com/OHF-Voice/piper1-gpl")
ESPEAK = Attribution(name="eSpeak NG", url="https://github.com/espeak-ng/espeak-ng")
QWEN = Attribution(name="Qwen3-TTS (Alibaba Qwen)", url="https://github.com/QwenLM/Qwen3-TTS")
LLAMA = Attribution(name="llama.cpp (llama-cpp-python)", url="https://github.com/abetlen/llama-cpp-python")


def version() -> str:
    try:
        return metadata.version("luxa")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0.0.0"


def whisper_languages(model: str, fixed: str | None) -> list[str]:
    """A `.en` model speaks English only; a fixed stt.language is the only one accepted."""
    if fixed:
        return [fixed]
    if model.endswith(".en"):
        return ["en"]
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # Whisper's own list, no public name

    return sorted(_LANGUAGE_CODES)


def build_info(assistant: Assistant, endpointing: bool) -> Info:
    """The three programs LUXA serves: asr (Whisper chain), tts (voice chain), handle (the LLM)."""
    return Info(asr=[_asr(assistant, endpointing)], tts=[_tts(assistant)], handle=[_handle(assistant)])


def _asr(assistant: Assistant, endpointing: bool) -> AsrProgram:
    stt = assistant.config.stt
    health = assistant.stt.health()
    models = [
        AsrModel(name=b.model, attribution=WHISPER, installed=bool(health.get(name, {}).get("loaded", True)),
                 description=f"{b.model} ({b.compute_type}, {b.device}), LUXA backend {name}", version=None,
                 languages=whisper_languages(b.model, stt.language))
        for name, b in sorted(stt.backends.items(), key=lambda kv: kv[1].priority) if b.enabled
    ]
    return AsrProgram(name="luxa-asr", attribution=LUXA, installed=True, version=version(),
                      description="LUXA speech to text: Whisper models in a fallback chain", models=models,
                      supports_transcript_streaming=True, requires_external_vad=not endpointing)


def _tts(assistant: Assistant) -> TtsProgram:
    tts = assistant.tts
    names = {m.name: m.backend for m in tts.chain.members}
    voices: list[TtsVoice] = []
    piper = names.get("piper_native") or names.get("piper_cli")
    by_voice: dict[tuple[str, str], list[str]] = {}
    for language, v in assistant.config.tts.voices.items():
        if v.piper and piper is not None:
            by_voice.setdefault(("piper", v.piper), []).append(language)
        if v.system and "system_voice" in names:
            by_voice.setdefault(("system", v.system), []).append(language)
    for (kind, name), languages in by_voice.items():
        if kind == "piper":
            voices.append(_piper_voice(cast("PiperBackend", piper), name, languages))  # set for a piper voice
        else:
            voices.append(TtsVoice(name=name, attribution=ESPEAK, installed=True, version=None, languages=languages,
                                   description=f"system voice {name}"))
    if "qwen_clone" in names:
        voices += _clone_voices(cast("QwenCloneBackend", names["qwen_clone"]), assistant.config)
    return TtsProgram(name="luxa-tts", attribution=LUXA, installed=True, version=version(),
                      description="LUXA text to speech: Piper, system and cloned voices in a fallback chain",
                      voices=voices, supports_synthesize_streaming=True)


def _piper_voice(backend: PiperBackend, name: str, languages: list[str]) -> TtsVoice:
    speakers = None
    installed = True
    try:
        config_path = backend.model_path(name).with_name(backend.model_path(name).name + ".json")
        speaker_map = json.loads(config_path.read_text(encoding="utf-8")).get("speaker_id_map") or {}
        if len(speaker_map) > 1:
            speakers = [TtsVoiceSpeaker(name=s) for s in speaker_map]
    except (LuxaError, OSError, ValueError) as err:
        log.warning("wyoming: Piper voice %s listed as not installed: %s", name, err)
        installed = False
    return TtsVoice(name=name, attribution=PIPER, installed=installed, version=None, languages=languages,
                    description=f"Piper voice {name}", speakers=speakers)


def _clone_voices(backend: QwenCloneBackend, config: LuxaConfig) -> list[TtsVoice]:
    try:
        prompts = backend.store.list()
    except Exception as err:  # a broken store must not take describe down with it
        log.warning("wyoming: cloned voices not listed: %s", err)
        return []
    return [TtsVoice(name=p.id, attribution=QWEN, installed=True, version=p.model_size,
                     languages=[config.tts.default_language], description=f"cloned voice: {p.ref_text[:60]}")
            for p in prompts]


def _handle(assistant: Assistant) -> HandleProgram:
    llm = assistant.config.llm
    languages = sorted(set(llm.apology) | {"en"})
    models = [
        HandleModel(name=b.model, attribution=LLAMA, installed=True, version=None, languages=languages,
                    description=f"LUXA LLM backend {name} ({b.kind})")
        for name, b in sorted(llm.backends.items(), key=lambda kv: kv[1].priority) if b.enabled
    ]
    return HandleProgram(name="luxa-conversation", attribution=LUXA, installed=True, version=version(),
                         description="LUXA conversation agent: intents, then the local LLM", models=models,
                         supports_handled_streaming=True)
