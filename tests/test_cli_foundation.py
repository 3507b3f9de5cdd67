"""The command line's foundation, run as a user would: a subprocess from the repository root."""
from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

import pytest
import yaml

from Core.models import EMBEDDED


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert "Traceback" not in stderr
    return lines[0]


def test_help_lists_the_commands(run_cli):
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("devices", "doctor", "transcribe", "say", "chat", "turn", "models", "--set", "--config"):
        assert command in result.stdout


def test_bad_config_value_stops_doctor_with_one_line_naming_the_key(run_cli):
    result = run_cli("--set", "stt.beam_size=banana", "doctor")
    assert result.returncode != 0
    line = _one_error_line(result.stderr)
    assert "stt.beam_size" in line and "banana" in line


def test_unknown_config_key_is_named_before_any_command_runs(run_cli):
    result = run_cli("--set", "stt.nope=1", "models", "prepare")
    assert result.returncode != 0
    line = _one_error_line(result.stderr)
    assert "stt.nope" in line and "beam_size" in line


def test_bad_environment_override_is_named(run_cli):
    result = run_cli("models", "list", env={"LUXA_GPU__ON_MISSING": "sometimes"})
    assert result.returncode != 0
    assert "gpu.on_missing" in _one_error_line(result.stderr)


def test_missing_config_file_is_one_line(run_cli, tmp_path: Path):
    result = run_cli("--config", str(tmp_path / "none.yaml"), "models", "list")
    assert result.returncode != 0
    assert "config file not found" in _one_error_line(result.stderr)


def test_models_prepare_resolves_every_configured_model(run_cli):
    result = run_cli("models", "prepare")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MISSING" not in result.stdout
    for name in ("whisper-base", "tiny.en", "smollm2-135m", "en_US-joe-medium", "smart-turn-v3.2"):
        assert name in result.stdout


def test_models_prepare_leaves_the_turn_model_out_when_it_is_off(run_cli):
    result = run_cli("--set", "vad.turn_model=null", "models", "prepare")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smart-turn-v3.2" not in result.stdout and "MISSING" not in result.stdout


def test_models_prepare_names_a_missing_model_and_fails(run_cli):
    result = run_cli("--set", "llm.backends.primary.model=no-such-model", "models", "prepare")
    assert result.returncode == 1
    assert "MISSING llm.backends.primary: no-such-model" in result.stdout


def test_models_list_shows_the_embedded_models_with_their_package(run_cli):
    result = run_cli("models", "list")
    assert result.returncode == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for name in EMBEDDED:
        assert name in rows and "pip: " in rows[name], result.stdout


def test_models_list_offers_the_manifest_models_not_yet_fetched(run_cli, tmp_path: Path):
    result = run_cli("--set", f"models.dir={tmp_path}", "models", "list")
    assert result.returncode == 0
    row = next(line for line in result.stdout.splitlines() if line.startswith("fr_FR-siwis-medium"))
    assert "not fetched" in row and "models fetch fr_FR-siwis-medium" in row


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path: Path):
    """A plain static mirror on 127.0.0.1 serving <root>/<name>/<file>."""
    root = tmp_path / "mirror"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _voice_manifest(tmp_path: Path, mirror_root: Path, sha_of_onnx: str | None = None) -> Path:
    voice = mirror_root / "xx_XX-test-medium"
    voice.mkdir()
    onnx, config = b"not really onnx " * 1000, b'{"audio": {"sample_rate": 22050}}'
    (voice / "xx_XX-test-medium.onnx").write_bytes(onnx)
    (voice / "xx_XX-test-medium.onnx.json").write_bytes(config)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"models": {"xx_XX-test-medium": {
        "kind": "piper", "base_url": "https://unreachable.invalid/voices",
        "files": [{"path": "xx_XX-test-medium.onnx", "size": len(onnx),
                   "sha256": sha_of_onnx or hashlib.sha256(onnx).hexdigest()},
                  {"path": "xx_XX-test-medium.onnx.json", "sha256": hashlib.sha256(config).hexdigest()}]}}}))
    return manifest


def test_models_fetch_installs_from_a_mirror_and_models_list_shows_its_source(run_cli, tmp_path: Path, mirror):
    mirror_root, url = mirror
    manifest = _voice_manifest(tmp_path, mirror_root)
    models_dir = tmp_path / "models"
    setting = f"models.dir={models_dir}"
    fetched = run_cli("--set", setting, "models", "fetch", "xx_XX-test-medium", "--manifest", str(manifest),
                      "--base-url", url)
    assert fetched.returncode == 0, fetched.stderr
    assert (models_dir / "xx_XX-test-medium" / "xx_XX-test-medium.onnx").is_file()

    listed = run_cli("--set", setting, "models", "list")
    row = next(line for line in listed.stdout.splitlines() if line.startswith("xx_XX-test-medium"))
    assert "piper" in row and f"from {url}/xx_XX-test-medium" in row
    assert "not fetched" not in row

    resolved = run_cli("--set", setting, "--set", "tts.voices.fr.piper=xx_XX-test-medium", "models", "prepare")
    assert "ok  tts.voices.fr.piper: xx_XX-test-medium" in resolved.stdout


def test_models_fetch_with_a_bad_checksum_fails_with_one_line(run_cli, tmp_path: Path, mirror):
    mirror_root, url = mirror
    manifest = _voice_manifest(tmp_path, mirror_root, sha_of_onnx="f" * 64)
    models_dir = tmp_path / "models"
    result = run_cli("--set", f"models.dir={models_dir}", "models", "fetch", "xx_XX-test-medium",
                     "--manifest", str(manifest), env={"LUXA_MODELS_BASE_URL": url})
    assert result.returncode != 0
    assert "checksum mismatch" in _one_error_line(result.stderr)
    assert not (models_dir / "xx_XX-test-medium").exists()


def test_models_fetch_of_an_unknown_name_lists_the_manifest(run_cli):
    result = run_cli("models", "fetch", "gpt-17")
    assert result.returncode != 0
    line = _one_error_line(result.stderr)
    assert "gpt-17" in line and "whisper-large-v3-turbo" in line and "fr_FR-siwis-medium" in line
