"""The voice similarity score on real recordings (FLEURS): same speaker beats different speakers.

FLEURS gives no speaker labels, so "same speaker" is the two halves of one recording, and
"different speakers" pairs an English clip with a French one: FLEURS utterances are read by
native speakers of each language, so the two languages never share a reader.
"""
from __future__ import annotations

import statistics

import numpy as np
import pytest

from Core.audio import Audio, load_audio
from Core.errors import AudioInputError
from TTS.similarity import compare, features, similarity

pytest.importorskip("librosa", reason="librosa comes with the dev extra (scripts/setup.sh --test)")

# clips long enough for two halves of several seconds each
ENGLISH = ["fleurs-en-000", "fleurs-en-001", "fleurs-en-002"]
FRENCH = ["fleurs-fr-001", "fleurs-fr-002", "fleurs-fr-004"]


@pytest.fixture(scope="module")
def halves(corpus_dir):
    found = {}
    for name in ENGLISH + FRENCH:
        audio = load_audio(corpus_dir / "fleurs" / f"{name}.ogg")
        middle = len(audio.samples) // 2
        found[name] = (features(Audio(audio.samples[:middle], audio.sample_rate)),
                       features(Audio(audio.samples[middle:], audio.sample_rate)))
    return found


def test_each_recording_is_closer_to_itself_than_to_any_speaker_of_the_other_language(halves):
    for mine, others in ((ENGLISH, FRENCH), (FRENCH, ENGLISH)):
        for name in mine:
            same = compare(halves[name][0], halves[name][1]).score
            different = [compare(halves[name][0], halves[other][1]).score for other in others]
            print(f"{name}: same {same:.3f}, other speakers {', '.join(f'{d:.3f}' for d in different)}")
            assert same > max(different), name


def test_same_speaker_pairs_score_higher_on_average(halves):
    same = [compare(a, b).score for a, b in halves.values()]
    different = [compare(halves[e][0], halves[f][1]).score for e in ENGLISH for f in FRENCH]
    different += [compare(halves[f][0], halves[e][1]).score for e in ENGLISH for f in FRENCH]
    print(f"same speaker mean {statistics.mean(same):.3f}, different mean {statistics.mean(different):.3f}")
    assert statistics.mean(same) > statistics.mean(different) + 0.1


def test_a_recording_compared_with_itself_scores_one(halves):
    first = halves["fleurs-en-001"][0]
    assert compare(first, first).score == pytest.approx(1.0)


def test_score_parts_are_weighted_0_3_0_3_0_4(halves):
    result = compare(halves["fleurs-en-001"][0], halves["fleurs-fr-004"][1])
    assert 0.0 <= result.score <= 1.0
    assert result.score == pytest.approx(0.3 * result.pitch + 0.3 * result.brightness + 0.4 * result.mfcc)


def test_level_does_not_change_the_score(corpus_dir):
    audio = load_audio(corpus_dir / "fleurs" / "fleurs-en-001.ogg")
    quiet = Audio(audio.samples * 0.01, audio.sample_rate)
    assert similarity(audio, quiet).score == pytest.approx(1.0, abs=1e-3)


def test_silence_cannot_be_measured():
    with pytest.raises(AudioInputError, match="silent"):
        features(Audio(np.zeros(16000, np.float32), 16000))
