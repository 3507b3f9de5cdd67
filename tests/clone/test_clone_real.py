"""The real qwen-tts code end to end on a tiny random Qwen3-TTS Base model (built in tmp).

The weights are random, so these tests prove the plumbing (prompt from a real recording, stored,
reused, persisted, deleted, expired; audio from the real speech-tokenizer decoder), never voice
quality: that needs the real weights (see docs/CLONE.md).
"""
from __future__ import annotations

import logging
import time

import pytest

from Config import LuxaConfig
from Core.errors import ModelMissingError, TextInputError
from tests.fakes import CPU
from TTS import UnifiedTTSManager
from TTS.qwen_clone import QwenCloneBackend, enable_for_voice
from TTS.voice_prompts import VoicePromptError

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SENTENCES = ["The first sentence in the cloned voice.", "A second one, from the same stored prompt."]


def clone_of(manager: UnifiedTTSManager) -> QwenCloneBackend:
    return manager.chain.member("qwen_clone").backend


class Calls:
    """Counts calls into the real reference-processing steps while still running them."""

    def __init__(self, model, monkeypatch) -> None:
        self.encode = self.embed = 0
        inner = model.model  # Qwen3TTSForConditionalGeneration
        encode, embed = inner.speech_tokenizer.encode, inner.extract_speaker_embedding

        def counted_encode(*args, **kwargs):
            self.encode += 1
            return encode(*args, **kwargs)

        def counted_embed(*args, **kwargs):
            self.embed += 1
            return embed(*args, **kwargs)

        monkeypatch.setattr(inner.speech_tokenizer, "encode", counted_encode)
        monkeypatch.setattr(inner, "extract_speaker_embedding", counted_embed)


async def started(config: LuxaConfig) -> UnifiedTTSManager:
    manager = UnifiedTTSManager(config, CPU)
    await manager.start()
    return manager


async def test_prompt_from_a_real_recording_speaks_two_sentences_and_survives_a_restart(
        clone_config, reference, monkeypatch):
    path, text = reference
    manager = await started(clone_config)
    try:
        prompt = clone_of(manager).create_voice(path, text)
        assert prompt.model_size == "0.6B" and prompt.ref_text == text and prompt.icl
        assert prompt.expires_at == pytest.approx(prompt.created_at + clone_config.tts.clone.prompt_ttl_s)
        results = [await manager.synthesize(s, voice=prompt.id) for s in SENTENCES]
    finally:
        await manager.close()
    for result in results:
        assert result.success and result.backend == "qwen_clone" and not result.cached
        assert result.audio.sample_rate == 24000 and result.audio.duration_s > 0.1

    restarted = await started(clone_config)  # a new process would see exactly this: the files only
    try:
        assert [p.id for p in clone_of(restarted).store.list()] == [prompt.id]
        engine = clone_of(restarted).engine("0.6B")
        calls = Calls(engine.model, monkeypatch)
        again = await restarted.synthesize("Spoken after the restart.", voice=prompt.id)
    finally:
        await restarted.close()
    assert again.success and again.backend == "qwen_clone"
    assert (calls.encode, calls.embed) == (0, 0)  # the reference was not processed again


async def test_stored_prompt_skips_reference_processing_that_the_direct_path_repeats(
        clone_config, reference, reference_audio, monkeypatch):
    path, text = reference
    backend = QwenCloneBackend(clone_config, clone_config.tts.backends["qwen_clone"], CPU)
    prompt = backend.create_voice(path, text)
    engine = backend.engine("0.6B")
    calls = Calls(engine.model, monkeypatch)

    started_at = time.perf_counter()
    for sentence in SENTENCES:
        backend.speak(prompt.id, sentence, "en")
    with_prompt = (time.perf_counter() - started_at) / len(SENTENCES)
    assert (calls.encode, calls.embed) == (0, 0)

    started_at = time.perf_counter()
    for sentence in SENTENCES:  # what a backend without prompts would do at every sentence
        engine.model.generate_voice_clone(text=sentence, language="english", ref_text=text,
                                          ref_audio=(reference_audio.samples, reference_audio.sample_rate),
                                          max_new_tokens=clone_config.tts.clone.max_new_tokens)
    direct = (time.perf_counter() - started_at) / len(SENTENCES)
    assert (calls.encode, calls.embed) == (len(SENTENCES), len(SENTENCES))
    print(f"per sentence: stored prompt {with_prompt * 1000:.0f} ms, reference every time {direct * 1000:.0f} ms")
    await backend.close()


async def test_deleted_voice_is_unknown_to_the_manager(clone_config, reference):
    manager = await started(clone_config)
    try:
        backend = clone_of(manager)
        prompt = backend.create_voice(*reference)
        backend.store.delete(prompt.id)
        with pytest.raises(TextInputError, match="unknown voice"):
            await manager.synthesize("Nobody speaks this.", voice=prompt.id)
    finally:
        await manager.close()


async def test_expired_voice_fails_over_to_the_emergency_with_the_reason(clone_config, reference):
    manager = await started(clone_config)
    try:
        backend = clone_of(manager)
        prompt = backend.create_voice(*reference)
        backend.store.clock = lambda: prompt.expires_at + 1.0
        result = await manager.synthesize("Too late for this voice.", voice=prompt.id)
        with pytest.raises(VoicePromptError, match="unknown voice"):  # expiry deleted the file
            backend.store.get(prompt.id)
    finally:
        await manager.close()
    assert not result.success and result.backend == "silent_emergency"
    assert "expired" in result.error
    assert backend.store.list() == []


async def test_similarity_is_reported_and_a_low_score_warns(clone_config, reference, caplog):
    from TTS.similarity import SIMILARITY

    backend = QwenCloneBackend(clone_config, clone_config.tts.backends["qwen_clone"], CPU)
    with caplog.at_level(logging.WARNING, logger="TTS.qwen_clone"):
        prompt = backend.create_voice(*reference)
    assert prompt.similarity is not None and 0.0 <= prompt.similarity <= 1.0
    assert backend.store.get(prompt.id)[0].similarity == prompt.similarity
    assert SIMILARITY._value.get() == pytest.approx(prompt.similarity, abs=1e-3)
    # random weights make noise, not the speaker: the check must say so
    if prompt.similarity < clone_config.tts.clone.similarity_threshold:
        assert any("sounds unlike its reference" in r.getMessage() for r in caplog.records)
    await backend.close()


async def test_default_voice_is_prepared_in_the_background_once(clone_settings, reference):
    path, text = reference
    settings = clone_settings
    settings["tts"]["clone"]["default_voice"] = {"audio": str(path), "text": text}
    settings["tts"]["backends"].update({name: {"enabled": False} for name in ("piper_native", "piper_cli", "system_voice")})
    config = LuxaConfig.model_validate(settings)
    ids = []
    for _ in range(2):  # the second start finds the stored prompt instead of making another
        manager = await started(config)
        try:
            await clone_of(manager)._default_task
            result = await manager.synthesize("Spoken in the default clone voice.")
            ids.append(clone_of(manager).voice_for(manager._request(None, None, None, None)))
        finally:
            await manager.close()
        assert result.success and result.backend == "qwen_clone"
    assert ids[0] == ids[1] and [p.id for p in clone_of(manager).store.list()] == [ids[0]]


async def test_missing_weights_name_where_to_put_them_and_how_to_fetch(clone_settings, reference, tmp_path):
    clone_settings["tts"]["clone"]["models"] = {"0.6B": str(tmp_path / "nothing-here")}
    config = LuxaConfig.model_validate(clone_settings)
    backend = QwenCloneBackend(config, config.tts.backends["qwen_clone"], CPU)
    with pytest.raises(ModelMissingError, match="models fetch qwen3-tts-12hz-0.6b-base") as err:
        backend.create_voice(*reference)
    assert str(tmp_path / "nothing-here") in str(err.value)


async def test_missing_weights_at_start_open_the_breaker_and_piper_still_speaks(clone_settings, tmp_path, caplog):
    clone_settings["tts"]["clone"]["models"] = {"0.6B": str(tmp_path / "nothing-here")}
    with caplog.at_level(logging.ERROR, logger="TTS.manager"):
        manager = await started(LuxaConfig.model_validate(clone_settings))
    try:
        result = await manager.synthesize("The other voices still work.")
    finally:
        await manager.close()
    assert manager.health()["backends"]["qwen_clone"] == "open"
    assert any("qwen_clone failed to start" in r.getMessage() and "models fetch" in r.getMessage()
               for r in caplog.records)
    assert result.success and result.backend == "piper_native"


async def test_say_voice_id_turns_the_clone_backend_on(clone_settings, reference):
    clone_settings["tts"]["backends"]["qwen_clone"]["enabled"] = False
    config = LuxaConfig.model_validate(clone_settings)
    backend = QwenCloneBackend(config, config.tts.backends["qwen_clone"], CPU)
    prompt = backend.create_voice(*reference)
    enabled = enable_for_voice(config, prompt.id)
    assert enabled.tts.backends["qwen_clone"].enabled and enabled.tts.clone.model_size == prompt.model_size
    assert enable_for_voice(config, "en_US-joe-medium") is config
