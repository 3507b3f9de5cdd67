"""Every TTS backend against its real engine: the audio is speech Whisper understands."""
from __future__ import annotations

import pytest

from Core.audio import load_audio, problem, write_wav
from Core.sentences import split_sentences
from tests.fakes import CPU
from TTS import UnifiedTTSManager

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

ENGLISH = "The weather is lovely today and we should go for a walk in the park."
# espeak-ng French is robotic and whisper-base is weak in French (FLEURS WER ~0.3): a short,
# common sentence keeps the check about the voice, not about the recogniser.
FRENCH = "Merci beaucoup, au revoir et à demain."


@pytest.fixture(scope="module")
async def manager():
    from Config import load_config

    tts = UnifiedTTSManager(load_config(overrides=["cache.enabled=false"], environ={}), CPU)
    await tts.start()
    yield tts
    await tts.close()


@pytest.mark.parametrize("backend,language,text", [
    ("piper_native", "en", ENGLISH),
    ("piper_cli", "en", ENGLISH),
    ("system_voice", "en", ENGLISH),
    ("system_voice", "fr", FRENCH),
])
async def test_backend_speaks_words_whisper_transcribes_back(manager, word_error_rate, tmp_path, backend, language, text):
    result = await manager.synthesize(text, language=language, backend=backend)
    assert result.success and result.backend == backend and not result.cached
    path = tmp_path / f"{backend}_{language}.wav"
    write_wav(path, result.audio)
    audio = load_audio(path)
    assert audio.sample_rate == 22050  # joe voice and espeak-ng both speak at 22.05 kHz
    assert problem(audio.samples) is None
    wer, heard = word_error_rate(audio, text, language)
    assert wer < 0.2, f"{backend}/{language} heard as {heard!r} (WER {wer:.2f})"


async def test_french_without_a_piper_voice_goes_to_espeak_without_counting_a_failure(manager):
    result = await manager.synthesize(FRENCH, language="fr")
    assert result.backend == "system_voice" and result.error is None
    assert manager.chain.member("piper_native").breaker._failures == 0


async def test_an_answer_speaks_each_sentence_as_soon_as_it_is_ready_in_one_voice(manager, word_error_rate):
    sentences = ["Good morning.", "The coffee is ready in the kitchen.", "Have a nice day!"]
    answer = manager.answer()
    results = [await answer.say(s) for s in split_sentences(" ".join(sentences))]
    assert [r.text for r in results] == sentences
    assert {r.backend for r in results} == {"piper_native"}
    for result, sentence in zip(results, sentences):
        assert word_error_rate(result.audio, sentence, "en")[0] < 0.2


async def test_speed_changes_the_duration(manager):
    normal = await manager.synthesize("Speaking at a different speed.", backend="piper_native")
    fast = await manager.synthesize("Speaking at a different speed.", backend="piper_native", speed=2.0)
    assert fast.audio.duration_s < 0.75 * normal.audio.duration_s


async def test_text_longer_than_max_chars_is_spoken_in_pieces_and_joined(make_config, word_error_rate):
    tts = UnifiedTTSManager(make_config("tts.max_chars=40", "cache.enabled=false",
                                        "tts.backends.piper_native.enabled=false", "tts.backends.piper_cli.enabled=false"), CPU)
    await tts.start()
    text = "The first sentence is here. The second sentence follows it. And a third one ends."
    result = await tts.synthesize(text)
    assert result.success and result.backend == "system_voice" and result.text == text
    assert word_error_rate(result.audio, text, "en")[0] < 0.2
