"""The voice prompt store on a real file system: bounds, expiry, persistence, damage."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from TTS.voice_prompts import PromptData, VoicePromptError, VoicePromptStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1.0  # every reading is a new instant: LRU order never ties
        return self.now


def _data(seed: int) -> PromptData:
    rng = np.random.default_rng(seed)
    return PromptData(rng.integers(0, 64, (30, 4)), rng.standard_normal(32).astype(np.float32))


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _store(directory: Path, clock: Clock, max_prompts: int = 3, ttl_s: float | None = 3600.0) -> VoicePromptStore:
    return VoicePromptStore(directory, max_prompts, ttl_s, clock)


def test_a_prompt_comes_back_identical_from_a_new_store(tmp_path, clock):
    data = _data(1)
    prompt = _store(tmp_path, clock).add(data, "0.6B", "some words", "/ref.wav")
    again, loaded = _store(tmp_path, clock).get(prompt.id)
    assert again == prompt
    np.testing.assert_array_equal(loaded.ref_code, data.ref_code)
    np.testing.assert_array_equal(loaded.speaker_embedding, data.speaker_embedding)
    assert again.expires_at == pytest.approx(prompt.created_at + 3600.0)


def test_x_vector_only_prompt_has_no_codes(tmp_path, clock):
    store = _store(tmp_path, clock)
    prompt = store.add(PromptData(None, np.ones(8, np.float32)), "1.7B", "t", "r")
    assert prompt.x_vector_only and not prompt.icl
    assert store.get(prompt.id)[1].ref_code is None


def test_least_recently_used_prompt_is_dropped_beyond_the_bound(tmp_path, clock):
    store = _store(tmp_path, clock, max_prompts=2)
    first = store.add(_data(1), "0.6B", "one", "r1")
    second = store.add(_data(2), "0.6B", "two", "r2")
    store.get(first.id)  # now `second` is the least recently used
    third = store.add(_data(3), "0.6B", "three", "r3")
    assert [p.id for p in store.list()] == [third.id, first.id]
    with pytest.raises(VoicePromptError, match="unknown voice"):
        store.get(second.id)


def test_recency_survives_a_restart(tmp_path, clock):
    store = _store(tmp_path, clock, max_prompts=2)
    first = store.add(_data(1), "0.6B", "one", "r1")
    second = store.add(_data(2), "0.6B", "two", "r2")
    store.get(first.id)
    _store(tmp_path, clock, max_prompts=2).add(_data(3), "0.6B", "three", "r3")
    assert second.id not in {p.id for p in _store(tmp_path, clock).list()}


def test_expired_prompt_is_refused_and_deleted(tmp_path, clock):
    store = _store(tmp_path, clock, ttl_s=10.0)
    prompt = store.add(_data(1), "0.6B", "one", "r1")
    clock.now += 11.0
    with pytest.raises(VoicePromptError, match="expired"):
        store.get(prompt.id)
    assert not list(tmp_path.glob("*.npz"))


def test_no_ttl_means_no_expiry(tmp_path, clock):
    store = _store(tmp_path, clock, ttl_s=None)
    prompt = store.add(_data(1), "0.6B", "one", "r1")
    clock.now += 10 * 365 * 86400.0
    assert prompt.expires_at is None and store.get(prompt.id)[0] == prompt


def test_corrupt_file_is_skipped_with_a_warning(tmp_path, clock, caplog):
    store = _store(tmp_path, clock)
    good = store.add(_data(1), "0.6B", "one", "r1")
    damaged = store.add(_data(2), "0.6B", "two", "r2")
    path = tmp_path / f"{damaged.id}.npz"
    path.write_bytes(path.read_bytes()[:100])  # a write cut short by a crash of another tool
    with caplog.at_level(logging.WARNING, logger="TTS.voice_prompts"):
        listed = _store(tmp_path, clock).list()
    assert [p.id for p in listed] == [good.id]
    assert any("unreadable" in r.getMessage() and damaged.id in r.getMessage() for r in caplog.records)


def test_writes_leave_no_temporary_files(tmp_path, clock):
    store = _store(tmp_path, clock)
    prompt = store.add(_data(1), "0.6B", "one", "r1")
    store.update(prompt, _data(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{prompt.id}.npz"]


def test_delete_forgets_the_prompt_and_a_second_delete_is_a_clear_error(tmp_path, clock):
    store = _store(tmp_path, clock)
    prompt = store.add(_data(1), "0.6B", "one", "r1")
    store.delete(prompt.id)
    assert store.list() == [] and not store.exists(prompt.id)
    with pytest.raises(VoicePromptError, match="unknown voice"):
        store.delete(prompt.id)


@pytest.mark.parametrize("bad", ["", "../../etc/passwd", "en_US-joe-medium", "1234"])
def test_ids_that_are_not_uuids_never_touch_the_file_system(tmp_path, clock, bad):
    store = _store(tmp_path, clock)
    assert not store.exists(bad)
    with pytest.raises(VoicePromptError, match="not a voice id"):
        store.get(bad)


def test_find_returns_the_prompt_made_from_the_same_reference(tmp_path, clock):
    store = _store(tmp_path, clock)
    prompt = store.add(_data(1), "0.6B", "words", "/a.wav")
    assert store.find("0.6B", "/a.wav", "words") == prompt
    assert store.find("1.7B", "/a.wav", "words") is None
    assert store.find("0.6B", "/a.wav", "other words") is None
