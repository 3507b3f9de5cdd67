"""Logic of the API's parts on their own: limits, gate, sessions, ids, key file, voice adapter."""
from __future__ import annotations

import asyncio
import dataclasses
import stat
import time
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
from Orchestrator.api.voices import Voices, record_json


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


# --- the voice prompt adapter, with a store shaped as the clone backend's contract says ---------

@dataclasses.dataclass
class Record:
    id: str
    model: str
    ref_text: str
    created_at: float
    expires_at: float
    prompt: object = None  # the tensors: never sent to clients


class AsyncStore:
    def __init__(self) -> None:
        self.records: dict[str, Record] = {}

    async def create(self, ref_audio: Audio, ref_text: str, model: str) -> Record:
        record = Record(f"v{len(self.records)}", model, ref_text, time.time(), time.time() + 3600, np.zeros(3))
        self.records[record.id] = record
        return record

    def list(self) -> list[Record]:
        return list(self.records.values())

    async def delete(self, voice_id: str) -> None:
        del self.records[voice_id]

    def get(self, voice_id: str) -> Record | None:
        return self.records.get(voice_id)


def _tts(backend=None, left_out=None):
    members = [] if backend is None else [SimpleNamespace(name="qwen_clone", backend=backend)]
    return SimpleNamespace(left_out=left_out or {}, chain=SimpleNamespace(members=members))


async def test_voice_routes_call_the_clone_backends_store_sync_or_async():
    voices = Voices(_tts(SimpleNamespace(voices=AsyncStore())))
    made = await voices.create(Audio(np.zeros(16000, np.float32), 16000), "hello", "0.6B")
    assert made["id"] == "v0" and made["model"] == "0.6B" and "prompt" not in made
    assert 3500 < made["expires_in"] <= 3600
    assert [v["id"] for v in await voices.list()] == ["v0"]
    assert (await voices.get("v0"))["ref_text"] == "hello"
    await voices.delete("v0")
    with pytest.raises(ApiError) as err:
        await voices.get("v0")
    assert err.value.status == 404


async def test_without_a_clone_backend_creating_and_listing_answer_501_with_the_reason():
    voices = Voices(_tts(left_out={"qwen_clone": "the qwen_tts package is not installed"}))
    with pytest.raises(ApiError) as err:
        await voices.list()
    assert err.value.status == 501 and "qwen_tts package is not installed" in err.value.message
    with pytest.raises(ApiError) as err:
        await voices.get("abc")
    assert err.value.status == 404
    no_store = Voices(_tts(SimpleNamespace()))
    with pytest.raises(ApiError, match="keeps no voice prompt store"):
        no_store.require()


def test_record_json_keeps_plain_fields_of_a_mapping_too():
    assert record_json({"id": "a", "created_at": 1.0, "embedding": [0.1], "expires_in": 5}) == \
        {"id": "a", "created_at": 1.0, "expires_in": 5}


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
