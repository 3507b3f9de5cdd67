"""Without the clone extra, the chain leaves qwen_clone out with one warning and everything else works.

In CI the extra is installed, so its absence is simulated the way Python would see it: the
package cannot be found (find_spec) nor imported (sys.modules entry None).
"""
from __future__ import annotations

import importlib.util
import json
import logging
import sys

import pytest

from Core.errors import BackendError
from tests.fakes import CPU
from TTS import UnifiedTTSManager

pytestmark = [pytest.mark.integration]

HIDE = """
import importlib.util, sys
_real = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split('.')[0] == 'qwen_tts' else _real(name, *a)
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'qwen_tts':
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Absent())
"""


@pytest.fixture
def no_qwen_tts(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.split(".")[0] == "qwen_tts" else real(name, *a))
    monkeypatch.setitem(sys.modules, "qwen_tts", None)


@pytest.mark.asyncio(loop_scope="module")
async def test_chain_skips_clone_with_one_warning_and_speaks_with_piper(no_qwen_tts, make_config, caplog):
    config = make_config("tts.backends.qwen_clone.enabled=true", "cache.enabled=false")
    with caplog.at_level(logging.WARNING):
        manager = UnifiedTTSManager(config, CPU)
        await manager.start()
        try:
            first = await manager.synthesize("Hello there, the clone voice is not installed.")
            answer = manager.answer()
            streamed = [await answer.say(s) for s in ("One sentence.", "And another one.")]
        finally:
            await manager.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([w for w in warnings if "qwen_clone" in w]) == 1, warnings
    assert "scripts/setup.sh --clone" in manager.health()["backends"]["qwen_clone"]
    assert first.success and first.backend == "piper_native"
    assert all(r.success and r.backend == "piper_native" for r in streamed)


@pytest.mark.asyncio(loop_scope="module")
async def test_forcing_the_missing_backend_is_a_one_line_error(no_qwen_tts, make_config):
    manager = UnifiedTTSManager(make_config("tts.backends.qwen_clone.enabled=true"), CPU)
    with pytest.raises(BackendError, match="qwen_clone is not available: the qwen_tts package is not installed"):
        await manager.synthesize("Hello.", backend="qwen_clone")
    await manager.close()


def test_cli_say_and_voices_list_work_without_the_extra(tmp_path, repo_root, corpus_dir):
    import subprocess

    out = tmp_path / "out.wav"
    state = f"service.state_dir={tmp_path}"
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-c", HIDE + "import runpy; sys.argv = ['run_assistant.py'] + sys.argv[1:]; "
         "runpy.run_path('run_assistant.py', run_name='__main__')", *args],
        cwd=repo_root, capture_output=True, text=True, timeout=300)
    said = run("--set", "tts.backends.qwen_clone.enabled=true", "--set", state,
               "say", "Still speaking without the clone extra.", "-o", str(out), "--json")
    assert said.returncode == 0, said.stderr
    assert json.loads(said.stdout.strip().splitlines()[-1])["backend"] == "piper_native"
    assert said.stderr.count("left out of the chain") == 1
    listed = run("--set", state, "voices", "list")
    assert listed.returncode == 0 and "no voices yet" in listed.stdout
    reference = corpus_dir / "fleurs" / "fleurs-en-001.ogg"
    created = run("--set", state, "voices", "create", str(reference), "--text", "All nouns.")
    assert created.returncode != 0 and "Traceback" not in created.stderr
    errors = [line for line in created.stderr.splitlines() if line.startswith("luxa: error:")]
    assert len(errors) == 1 and "qwen_tts package is not installed" in errors[0]
    assert "scripts/setup.sh --clone" in errors[0]
