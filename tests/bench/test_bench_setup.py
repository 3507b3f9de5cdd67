"""The set-up the benchmark scripts share (scripts/bench_common.py): their arguments, the config,
one-line errors and the JSON report. No models are loaded: a bad --set stops each script first."""
from __future__ import annotations

import json

import pytest
from bench_common import report_header, write_json

from Config import load_config
from Orchestrator.commands.bench import load_script

# script -> exit status on a config error (bench_stt and bench_tts have always said 1, the others the error's own)
SCRIPTS = {"bench_answers": 2, "bench_buffers": 2, "bench_commands": 2, "bench_llm": 2, "bench_llm_rooms": 2, "bench_session": 2,
           "bench_turn": 2,
           "bench_stt": 1, "bench_tts": 1}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_a_bad_setting_is_one_line_and_an_exit_status(name, capsys, repo_root):
    status = load_script(name).main(["--config", str(repo_root / "Config" / "assistant.yaml"), "--set", "llm.nonsense=1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == SCRIPTS[name]
    assert len(err) == 1 and err[0].startswith(f"{name}: error: config: unknown key llm.nonsense"), err


def test_the_report_heads_with_machine_models_extras_then_settings_and_writes_utf8_json(tmp_path):
    config = load_config(environ={})
    report = report_header(config, ["llm.temperature=0"], settings={"turns": 4}, device="cpu")
    assert list(report) == ["machine", "models", "device", "settings"]
    assert report["settings"] == {"turns": 4, "overrides": ["llm.temperature=0"]}
    assert report["models"]["stt"] and report["machine"]["cores"]
    report["reply"] = "Il est midi à Paris."
    out = tmp_path / "report.json"
    write_json(str(out), report)
    assert "midi à Paris" in out.read_text(encoding="utf-8")
    assert json.loads(out.read_text(encoding="utf-8")) == report
    write_json(None, report)  # no --json: nothing written, no error
