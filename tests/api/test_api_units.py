"""Logic of the API's parts on their own: limits, gate, sessions, ids, key file, voice adapter."""
from __future__ import annotations

import asyncio
import stat
from types import SimpleNamespace

import numpy as np
import pytest

from Config.schema import LuxaConfig
from Core.audio import Audio
from Core.errors import ConfigError, LuxaError
from Orchestrator.api.errors import ApiError
from Orchestrator.api.ids import checked_id
from Orchestrator.api.limits import InferenceGate, QueueFull, RateLimiter
from Orchestrator.api.security import create_key, key_matches, presented_key, read_key, server_key
from Orchestrator.api.sessions import SessionStore
from Orchestrator.api.voices import Voices
from TTS.voice_prompts import PromptData, VoicePromptStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_a_burst_then_refills_at_the_configured_rate():
    clock = Clock()
    limiter = RateLimiter(60, clock)
    assert all(limiter.check("a") is None for _ in range(60))
    wait = limiter.check("a")
    assert wait == pytest.approx(1.0)
    assert limiter.check("b") is None  # another client has its own bucket
    clock.now = 1.0
    assert limiter.check("a") is None and limiter.check("a") is not None


async def test_gate_admits_one_running_plus_the_queue_and_refuses_the_rest():
    gate = InferenceGate(queue_size=1)
    first = await gate.acquire()
    waiting = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):
        await gate.acquire()
    first.release()
    first.release()  # idempotent: a second release must not free someone else's slot
    second = await waiting
    assert gate.depth == 1
    second.release()
    assert gate.depth == 0


async def test_gate_frees_the_place_of_a_request_cancelled_while_waiting():
    gate = InferenceGate(queue_size=1)
    running = await gate.acquire()
    waiting = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert gate.depth == 1
    running.release()
    assert gate.depth == 0


def test_sessions_are_bounded_and_least_recently_used_go_first():
    made = []
    store = SessionStore(2, lambda: made.append(object()) or made[-1])
    a = store.get("a")
    store.get("b")
    assert store.get("a") is a
    store.get("c")  # evicts b, the least recently used
    assert len(store) == 2 and store.get("a") is a
    assert store.get(None) is not store.get(None)  # no id: a one-off conversation each time


@pytest.mark.parametrize("bad", ["../x", "a/b", "a\\b", "..", ".hidden", "x" * 65, "", "a b", "é"])
def test_ids_with_path_characters_are_refused(bad):
    with pytest.raises(ApiError) as err:
        checked_id(bad, "voice id")
    assert err.value.status == 422


def test_plain_ids_pass():
    assert checked_id("0f1e2d3c-4b5a_6978", "voice id") == "0f1e2d3c-4b5a_6978"


def test_key_is_read_from_bearer_or_x_api_key_and_compared_in_full():
    assert presented_key({"authorization": "Bearer abc"}) == "abc"
    assert presented_key({"authorization": "bearer  abc "}) == "abc"
    assert presented_key({"x-api-key": "xyz"}) == "xyz"
    assert presented_key({"authorization": "Basic abc"}) is None
    assert key_matches("abc", "abc") and not key_matches("ab", "abc") and not key_matches(None, "abc")


def _config(tmp_path, host="127.0.0.1") -> LuxaConfig:
    config = LuxaConfig()
    config.service.state_dir = str(tmp_path / "state")
    config.api.host = host
    return config


def test_first_start_on_loopback_creates_a_private_key_and_keeps_it(tmp_path):
    config = _config(tmp_path)
    key, path = server_key(config)
    assert path == tmp_path / "state" / "api_key" and len(key) >= 43
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server_key(config) == (key, path)


def test_beyond_loopback_a_key_is_needed_first_and_then_accepted(tmp_path):
    config = _config(tmp_path, host="0.0.0.0")
    with pytest.raises(ConfigError):
        server_key(config)
    key = create_key(tmp_path / "state" / "api_key")
    assert server_key(config)[0] == key


def test_a_short_or_shared_key_file_is_refused(tmp_path):
    path = tmp_path / "api_key"
    path.write_text("short")
    path.chmod(0o600)
    with pytest.raises(LuxaError, match="fewer than 16"):
        read_key(path)
    path.write_text("k" * 40)
    path.chmod(0o640)
    with pytest.raises(LuxaError, match="chmod 600"):
        read_key(path)


def test_create_key_never_overwrites_unless_rotating(tmp_path):
    path = tmp_path / "api_key"
    first = create_key(path)
    with pytest.raises(LuxaError, match="already exists"):
        create_key(path)
    assert read_key(path) == first
    assert create_key(path, replace=True) != first


# --- the voice prompt adapter over the clone backend's real store (no model: creation is e2e) ---

def _tts(backend=None, left_out=None):
    members = [] if backend is None else [SimpleNamespace(name="qwen_clone", backend=backend)]
    return SimpleNamespace(left_out=left_out or {}, chain=SimpleNamespace(members=members))


@pytest.fixture
def stored(tmp_path):
    """A prompt store as the clone backend keeps it, with one prompt already made."""
    store = VoicePromptStore(tmp_path / "voices", max_prompts=4, ttl_s=3600.0)
    prompt = store.add(PromptData(np.zeros((5, 4), np.int64), np.zeros(32, np.float32)), "0.6B", "hello",
                       "/home/someone/reference.wav")
    return store, prompt


async def test_voice_records_show_id_model_and_expiry_never_arrays_or_the_reference_path(stored):
    store, prompt = stored
    voices = Voices(_tts(SimpleNamespace(store=store)))
    listed = await voices.list()
    assert [v["id"] for v in listed] == [prompt.id]
    shown = await voices.get(prompt.id)
    assert shown == listed[0]
    assert shown["model"] == "0.6B" and shown["created_at"] == prompt.created_at and shown["ref_text"] == "hello"
    assert 3500 < shown["expires_in"] <= 3600
    assert "ref_audio" not in shown and "/home/someone" not in str(shown)


async def test_deleting_a_voice_removes_it_and_a_second_delete_is_404(stored):
    store, prompt = stored
    voices = Voices(_tts(SimpleNamespace(store=store)))
    await voices.delete(prompt.id)
    assert not store.exists(prompt.id) and await voices.list() == []
    for call in (voices.get, voices.delete):
        with pytest.raises(ApiError) as err:
            await call(prompt.id)
        assert err.value.status == 404 and err.value.code == "unknown_voice"


async def test_an_id_the_store_does_not_hold_is_404_even_when_not_a_uuid(stored):
    voices = Voices(_tts(SimpleNamespace(store=stored[0])))
    for voice_id in ("0f1e2d3c-unknown", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"):
        with pytest.raises(ApiError) as err:
            await voices.get(voice_id)
        assert err.value.status == 404


async def test_without_a_clone_backend_creating_and_listing_answer_501_with_the_reason():
    voices = Voices(_tts(left_out={"qwen_clone": "disabled (tts.backends.qwen_clone.enabled=false)"}))
    for call in (voices.list(), voices.create(Audio(np.zeros(16000, np.float32), 16000), "hello", None)):
        with pytest.raises(ApiError) as err:
            await call
        assert err.value.status == 501 and "qwen_clone.enabled=false" in err.value.message
    with pytest.raises(ApiError) as err:
        await voices.get("abc")
    assert err.value.status == 404 and "unavailable" in err.value.message
    with pytest.raises(ApiError, match="not in the TTS chain"):
        Voices(_tts()).require()


async def test_api_work_waits_while_the_voice_loop_is_in_a_turn():
    from Orchestrator.api.services import Services

    state = {"mode": "voice", "state": "speaking"}
    assistant = SimpleNamespace(llm=SimpleNamespace(new_conversation=object), tts=_tts())
    services = Services(assistant, LuxaConfig().api, lambda: dict(state))
    waiting = asyncio.create_task(services.slot())
    await asyncio.sleep(0.2)
    assert not waiting.done()  # the user's turn goes first
    state["state"] = "listening"
    slot = await asyncio.wait_for(waiting, 5)
    slot.release()
    assert services.gate.depth == 0
