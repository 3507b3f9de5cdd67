"""Hot-swap of the LLM on the running daemon: over the API and with `models use`, no restart."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration  # the daemon with the real models


def test_the_llm_is_swapped_on_the_running_daemon_and_answers_after_it(client):
    swapped = client.post("/v1/models/llm", json={"model": "smollm2-135m"})
    assert swapped.status_code == 200, swapped.text
    body = swapped.json()
    assert body["backend"] == "primary" and body["model"] == "smollm2-135m" and body["path"].endswith(".gguf")
    chat = client.post("/v1/chat", json={"text": "What is the capital of France?"})
    assert chat.status_code == 200 and chat.json()["backend"] == "primary"


def test_a_refused_swap_says_why_in_one_line_and_the_old_model_keeps_serving(client):
    missing = client.post("/v1/models/llm", json={"model": "no-such-model"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    unknown = client.post("/v1/models/llm", json={"model": "smollm2-135m", "backend": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_backend"
    assert client.get("/v1/models").json()["llm"]["backends"]["primary"]["loaded"] is True
    assert client.post("/v1/chat", json={"text": "Hello."}).json()["backend"] == "primary"


def test_models_use_swaps_the_running_daemon_from_the_command_line(daemon, run_cli):
    state = ("--set", f"service.state_dir={daemon.state_dir}")
    done = run_cli(*state, "models", "use", "smollm2-135m", "--url", daemon.url, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "now serves smollm2-135m" in done.stdout
    refused = run_cli(*state, "models", "use", "no-such-model", "--url", daemon.url, timeout=120)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().startswith("luxa: error: swap refused:")
    nobody = run_cli(*state, "models", "use", "smollm2-135m", "--url", "http://127.0.0.1:9", timeout=60)
    assert nobody.returncode != 0 and "no daemon answers at http://127.0.0.1:9" in nobody.stderr


def test_a_swap_cannot_name_a_file_outside_the_models_folder(client):
    for name in ("/etc/passwd", "../../etc/passwd", "models/../../x.gguf", "x" * 500):
        refused = client.post("/v1/models/llm", json={"model": name})
        assert refused.status_code == 422, (name, refused.text)
