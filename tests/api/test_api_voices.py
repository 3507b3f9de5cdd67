"""Voice prompt routes end to end: a daemon with the qwen_clone backend on the tiny Qwen3-TTS model.

The model is the tiny random Base model of the clone tests (scripts/tiny_qwen.py), so the
cloned audio is noise: these tests prove the plumbing (upload -> stored prompt -> speech in that
voice -> deletion), never the likeness (docs/CLONE.md says what needs the real weights).
"""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest
import soundfile
import yaml

from Config.schema import TtsConfig
from tests.api.conftest import LIMITS, start_daemon, stop_daemon
from tests.api.test_schema_fuzz import run_schemathesis
from tests.clone.conftest import MAX_NEW_TOKENS, NO_EXTRA, REFERENCE

pytestmark = pytest.mark.integration
CLONE_RATE = 24000  # the 12 Hz speech tokenizer decodes at 24 kHz


@pytest.fixture(scope="module")
def clone_daemon(tmp_path_factory):
    """`serve` with qwen_clone enabled on the tiny model (a --config file: the `0.6B` key holds a
    dot, which --set cannot address). STT loads lazily: nothing here transcribes."""
    if importlib.util.find_spec("qwen_tts") is None:
        pytest.skip(NO_EXTRA)
    from tiny_qwen import build_tiny_base_model  # scripts/

    root = tmp_path_factory.mktemp("luxa-clone-api")
    tiny = build_tiny_base_model(root / "qwen3-tts-tiny-base")
    backends = {name: backend.model_dump() for name, backend in TtsConfig().backends.items()}
    backends["qwen_clone"]["enabled"] = True
    settings = {"tts": {"backends": backends,
                        "clone": {"models": {"0.6B": str(tiny)}, "prompt_store_dir": str(root / "voices"),
                                  "max_new_tokens": MAX_NEW_TOKENS}}}
    config = root / "clone.yaml"
    config.write_text(yaml.safe_dump(settings))
    running = start_daemon(root / "state", "--config", str(config), limits={**LIMITS, "stt.load": "lazy"})
    yield running
    assert stop_daemon(running.proc) == 0, "the daemon did not stop cleanly on SIGTERM"


@pytest.fixture(scope="module")
def clone_client(clone_daemon):
    with clone_daemon.client() as http:
        yield http


def test_a_voice_made_from_an_upload_speaks_say_and_is_gone_after_delete(clone_client, corpus_dir: Path):
    clip = corpus_dir / "fleurs" / f"{REFERENCE}.ogg"
    text = clip.with_suffix(".txt").read_text().strip()
    assert clone_client.get("/v1/voices").json() == {"voices": []}

    with clip.open("rb") as upload:
        created = clone_client.post("/v1/voices", files={"file": (clip.name, upload, "audio/ogg")},
                                    data={"text": text, "model": "0.6B"})
    assert created.status_code == 201, created.text
    voice = created.json()
    assert voice["model"] == "0.6B" and voice["ref_text"] == text and voice["created_at"] > 0
    assert 0 < voice["expires_in"] <= TtsConfig().clone.prompt_ttl_s
    assert set(voice) == {"id", "model", "created_at", "expires_in", "ref_text", "similarity"}  # no server paths

    listed = clone_client.get("/v1/voices").json()["voices"]
    assert [v["id"] for v in listed] == [voice["id"]]
    assert clone_client.get(f"/v1/voices/{voice['id']}").json()["id"] == voice["id"]

    said = clone_client.post("/v1/say", json={"text": "Hello from the cloned voice.", "voice": voice["id"]})
    assert said.status_code == 200, said.text
    assert said.headers["content-type"] == "audio/wav" and said.headers["x-luxa-backend"] == "qwen_clone"
    samples, rate = soundfile.read(io.BytesIO(said.content), dtype="float32")
    info = soundfile.info(io.BytesIO(said.content))
    assert rate == CLONE_RATE and info.channels == 1 and info.subtype == "PCM_16"
    assert len(samples) > CLONE_RATE // 10  # random weights: noise, but some of it

    deleted = clone_client.delete(f"/v1/voices/{voice['id']}")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": voice["id"]}
    assert clone_client.get("/v1/voices").json() == {"voices": []}
    for method in ("GET", "DELETE"):
        gone = clone_client.request(method, f"/v1/voices/{voice['id']}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_voice"
    refused = clone_client.post("/v1/say", json={"text": "Still there?", "voice": voice["id"]})
    assert refused.status_code == 422, refused.text


def test_an_unusable_reference_is_422_in_one_line_without_the_daemons_temporary_path(clone_client, corpus_dir):
    clip = corpus_dir / "fleurs" / f"{REFERENCE}.ogg"
    samples, rate = soundfile.read(clip, dtype="float32")
    short = io.BytesIO()
    soundfile.write(short, samples[: rate // 2], rate, format="WAV")  # half a second: below tts.clone.ref_min_s
    response = clone_client.post("/v1/voices", files={"file": ("short.wav", short.getvalue(), "audio/wav")},
                                 data={"text": "All nouns."})
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "ref_min_s" in message and "luxa-voice-" not in message and "\n" not in message


def test_a_model_size_without_weights_is_501_with_the_setting_to_fix(clone_client, corpus_dir):
    clip = corpus_dir / "fleurs" / f"{REFERENCE}.ogg"
    with clip.open("rb") as upload:
        response = clone_client.post("/v1/voices", files={"file": (clip.name, upload, "audio/ogg")},
                                     data={"text": clip.with_suffix(".txt").read_text().strip(), "model": "1.7B"})
    assert response.status_code == 501, response.text
    assert response.json()["error"]["code"] == "clone_unavailable"
    assert "1.7B" in response.json()["error"]["message"]


def test_fuzzing_the_voice_routes_with_the_clone_backend_on_finds_no_server_error(clone_daemon, pytestconfig):
    run_schemathesis(clone_daemon, "--include-path-regex", "^/v1/voices", long=pytestconfig.getoption("--long"))
