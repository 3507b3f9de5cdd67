"""say, transcribe and chat against the running daemon with the real default models."""
from __future__ import annotations

import io
import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile

pytestmark = pytest.mark.integration


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def test_say_returns_a_wav_that_whisper_transcribes_back(client, whisper_base):
    sentence = "The kitchen lights are now switched off."
    response = client.post("/v1/say", json={"text": sentence})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["x-luxa-backend"] == "piper_native"
    assert float(response.headers["x-luxa-latency-ms"]) > 0
    samples, rate = soundfile.read(io.BytesIO(response.content), dtype="float32")
    assert rate == 22050 and len(samples) > rate  # the joe voice, more than a second of speech
    from Core.audio import resample

    segments, _ = whisper_base.transcribe(resample(samples, rate, 16000), language="en", beam_size=1)
    heard = _words(" ".join(s.text for s in segments))
    assert heard == _words(sentence), heard


def test_say_answers_repeated_text_from_the_cache(client):
    text = f"Cache check number {uuid.uuid4().int % 1000}."
    first = client.post("/v1/say", json={"text": text})
    again = client.post("/v1/say", json={"text": text})
    assert (first.headers["x-luxa-cached"], again.headers["x-luxa-cached"]) == ("false", "true")
    assert again.content == first.content


def test_say_refuses_unspeakable_text_with_a_one_line_422(client):
    response = client.post("/v1/say", json={"text": "*** ### ***"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and "\n" not in error["message"]


@pytest.mark.parametrize("clip", ["turn_on_the_living_room_lamp.wav", "living_room_light_en.wav"])
def test_transcribe_returns_the_corpus_text(client, corpus_dir, clip):
    references = dict(line.split("\t", 1) for line in (corpus_dir / "commands" / "transcripts.tsv").read_text().splitlines()
                      if "\t" in line)
    with open(corpus_dir / "commands" / clip, "rb") as audio:
        response = client.post("/v1/transcribe", files={"file": (clip, audio, "audio/wav")}, data={"language": "en"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert _words(body["text"]) == _words(references[clip])
    assert body["backend"] == "whisper_base" and body["language"] == "en"


def test_transcribe_refuses_a_file_that_is_not_audio(client):
    response = client.post("/v1/transcribe", files={"file": ("notes.wav", b"RIFF but not really audio", "audio/wav")})
    assert response.status_code == 422
    assert response.json()["error"] == {"code": "invalid_audio", "type": "invalid_request_error", "param": None,
                                        "message": "file (notes.wav): cannot read audio file: not a supported audio format"}


def test_transcribe_refuses_silence_with_the_reason(client):
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(16000, np.float32), 16000, format="WAV")
    response = client.post("/v1/transcribe", files={"file": ("silence.wav", buffer.getvalue(), "audio/wav")})
    assert response.status_code == 422
    assert "silent" in response.json()["error"]["message"]


def test_chat_answers_and_keeps_api_sessions_apart_from_the_voice_loop(client):
    before = client.get("/v1/models").json()["llm"]["history_tokens"]
    response = client.post("/v1/chat", json={"text": "What is the capital of France?", "session_id": "kitchen-hub"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reply"].strip() and body["backend"] == "primary" and body["session_id"] == "kitchen-hub"
    # What it answers is not asserted: the 135M model's reply to this question follows what the shared
    # llama.cpp context decoded before (a clean-clone run on one 2-core AMD EPYC, after the other API
    # tests: "La femme au pays d'Alban - the woman in the armor."; alone: Paris). Answer quality is
    # measured by `bench answers` (docs/BENCHMARKS.md).
    # the voice loop's own conversation did not receive the API's turn
    assert client.get("/v1/models").json()["llm"]["history_tokens"] == before
    assert client.get("/health").json()["sessions"] >= 1


def test_chat_streams_server_sent_events_ending_with_the_whole_reply(client):
    pieces, done = [], None
    with client.stream("POST", "/v1/chat", json={"text": "Say hello.", "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = "message"
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: "):])
                if event == "done":
                    done = data
                else:
                    pieces.append(data["text"])
    assert pieces and done is not None
    assert "".join(pieces).strip() == done["reply"]
    assert done["first_token_ms"] <= done["latency_ms"]


def test_a_client_hanging_up_mid_stream_stops_the_answer_and_frees_its_slot(daemon, client):
    seen = len(daemon.lines)
    with client.stream("POST", "/v1/chat", json={"text": "Tell me a long story.", "stream": True}) as response:
        assert response.status_code == 200
        next(response.iter_lines())  # the first piece arrived: generation is under way; now hang up
    for _ in range(100):
        if client.get("/health").json()["queue_depth"] == 0:
            break
        time.sleep(0.1)
    assert client.get("/health").json()["queue_depth"] == 0
    assert client.post("/v1/chat", json={"text": "Say yes."}).status_code == 200
    assert not [line for line in daemon.lines[seen:] if "Traceback" in line or "ERROR" in line]


def test_chat_refuses_a_session_id_that_is_a_path(client):
    response = client.post("/v1/chat", json={"text": "hi", "session_id": "../../etc"})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("body.session_id:")


def test_requests_beyond_the_queue_are_refused_at_once_with_503(daemon, client):
    # queue_size=2 for the test daemon: one running and two waiting are admitted, the rest refused
    texts = [f"Queue test sentence {uuid.uuid4().hex[:6]} spoken at some length to keep the model busy."
             for _ in range(8)]
    with ThreadPoolExecutor(len(texts)) as pool:
        responses = list(pool.map(lambda text: client.post("/v1/say", json={"text": text}), texts))
    codes = sorted(r.status_code for r in responses)
    assert 200 in codes and 503 in codes, codes
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.json()["error"]["code"] == "busy" and refused.headers["retry-after"] == "1"
    assert client.get("/health").json()["queue_depth"] == 0  # every slot was given back


def test_models_reports_what_is_loaded_and_preload_loads_it(client):
    models = client.get("/v1/models").json()
    assert models["device"]["device"] == "cpu" and models["process_rss_mb"] > 100
    assert models["stt"]["whisper_base"]["loaded"] is True
    preload = client.post("/v1/models/preload", json={"stage": "llm"})
    assert preload.status_code == 200
    assert [(b["name"], b["loaded"]) for b in preload.json()["backends"]] == [("primary", True)]
    unknown = client.post("/v1/models/preload", json={"stage": "tts", "backend": "nope"})
    assert unknown.status_code == 404 and "piper_native" in unknown.json()["error"]["message"]
    disabled = client.post("/v1/models/preload", json={"stage": "tts", "backend": "qwen_clone"})
    assert disabled.status_code == 409


def test_metrics_expose_the_api_counters(client):
    client.get("/health")
    text = client.get("/metrics").text
    assert 'luxa_api_requests_total{route="/health",status="200"}' in text
    assert "luxa_tts_synthesis_seconds" in text  # the managers' metrics, same registry
