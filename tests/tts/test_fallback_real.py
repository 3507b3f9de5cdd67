"""Real failures injected into real engines: the next backend answers, breakers open, probes recover."""
from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

import pytest

from Core.audio import problem
from Core.breaker import BreakerState
from tests.fakes import CPU
from TTS import UnifiedTTSManager

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

TEXT = "Hello, this is a fallback test."
COOLDOWN = 30.0


def breaker_overrides() -> list[str]:
    return ["circuit_breaker.failure_threshold=2", f"circuit_breaker.cooldown_s={COOLDOWN}", "cache.enabled=false"]


def state(manager: UnifiedTTSManager, name: str) -> BreakerState:
    return manager.chain.member(name).breaker.state


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def broken_voice(tmp_path: Path, joe_voice: Path) -> Path:
    """A voice whose .onnx is junk but whose .onnx.json is the real one."""
    onnx = tmp_path / "broken.onnx"
    onnx.write_bytes(os.urandom(4096))
    shutil.copyfile(joe_voice.with_name(joe_voice.name + ".json"), tmp_path / "broken.onnx.json")
    return onnx


async def test_missing_piper_voice_at_start_opens_the_breaker_and_a_probe_brings_it_back(make_config, clock, tmp_path, joe_voice):
    voice = tmp_path / "later.onnx"
    shutil.copyfile(joe_voice.with_name(joe_voice.name + ".json"), tmp_path / "later.onnx.json")
    tts = UnifiedTTSManager(make_config(f"tts.voices.en.piper={voice}", "tts.backends.piper_cli.enabled=false",
                                        *breaker_overrides()), CPU, clock=clock)
    await tts.start()
    assert state(tts, "piper_native") is BreakerState.OPEN
    result = await tts.synthesize(TEXT)
    assert result.success and result.backend == "system_voice" and "piper_native: breaker open" in result.error

    shutil.copyfile(joe_voice, voice)  # the user installs the voice
    clock.advance(COOLDOWN)
    result = await tts.synthesize(TEXT)
    assert result.backend == "piper_native" and problem(result.audio.samples) is None
    assert state(tts, "piper_native") is BreakerState.CLOSED


async def test_corrupt_piper_voice_fails_each_request_until_the_threshold_opens_the_breaker(make_config, clock, tmp_path, joe_voice):
    voice = broken_voice(tmp_path, joe_voice)
    tts = UnifiedTTSManager(make_config(f"tts.voices.en.piper={voice}", "tts.backends.piper_cli.enabled=false",
                                        *breaker_overrides()), CPU, clock=clock)
    # not started: voices also load on first use, so each request retries the load and fails
    for _ in range(2):
        result = await tts.synthesize(TEXT)
        assert result.backend == "system_voice" and "cannot load Piper voice broken.onnx" in result.error
    assert state(tts, "piper_native") is BreakerState.OPEN
    result = await tts.synthesize(TEXT)
    assert result.backend == "system_voice" and "piper_native: breaker open" in result.error

    shutil.copyfile(joe_voice, voice)
    clock.advance(COOLDOWN)
    assert (await tts.synthesize(TEXT)).backend == "piper_native"
    assert state(tts, "piper_native") is BreakerState.CLOSED


def _gone_or_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_hanging_piper_executable_is_killed_on_timeout_and_espeak_answers(make_config, clock, tmp_path):
    pid_file = tmp_path / "engine.pid"
    piper = script(tmp_path / "piper", f"sleep 60 & echo $! > {pid_file}\nwait")
    tts = UnifiedTTSManager(make_config("tts.backends.piper_native.enabled=false", f"tts.backends.piper_cli.executable={piper}",
                                        "tts.backends.piper_cli.timeout_s=1", *breaker_overrides()), CPU, clock=clock)
    await tts.start()
    for _ in range(2):
        result = await tts.synthesize(TEXT)
        assert result.backend == "system_voice" and "piper_cli: timed out after 1 s" in result.error
        assert _gone_or_zombie(int(pid_file.read_text())), "the engine's child survived the timeout"
        pid_file.unlink()
    assert state(tts, "piper_cli") is BreakerState.OPEN
    result = await tts.synthesize(TEXT)
    assert "piper_cli: breaker open" in result.error and not pid_file.exists()  # not even started

    real_piper = Path(os.sys.executable).parent / "piper"
    script(piper, f'exec "{real_piper}" "$@"')  # the engine is repaired
    tts.chain.member("piper_cli").timeout_s = 60  # 1 s was for the hang; loading a real voice takes longer
    clock.advance(COOLDOWN)
    result = await tts.synthesize(TEXT)
    assert result.backend == "piper_cli" and problem(result.audio.samples) is None
    assert state(tts, "piper_cli") is BreakerState.CLOSED


async def test_piper_executable_exiting_non_zero_reports_its_last_stderr_line(make_config, clock, tmp_path):
    piper = script(tmp_path / "piper", "echo 'loading voice' >&2\necho 'piper: voice file is corrupt' >&2\nexit 3")
    tts = UnifiedTTSManager(make_config("tts.backends.piper_native.enabled=false",
                                        f"tts.backends.piper_cli.executable={piper}", *breaker_overrides()), CPU, clock=clock)
    await tts.start()
    result = await tts.synthesize(TEXT)
    assert result.backend == "system_voice"
    assert "piper exited with status 3: piper: voice file is corrupt" in result.error
    assert state(tts, "piper_cli") is BreakerState.CLOSED  # one failure is below the threshold of 2
    await tts.synthesize(TEXT)
    assert state(tts, "piper_cli") is BreakerState.OPEN


async def test_missing_espeak_falls_to_emergency_silence_then_recovers(make_config, clock, tmp_path, caplog):
    espeak = tmp_path / "bin" / "espeak-ng"
    tts = UnifiedTTSManager(make_config("tts.backends.piper_native.enabled=false", "tts.backends.piper_cli.enabled=false",
                                        f"tts.backends.system_voice.executable={espeak}", *breaker_overrides()), CPU, clock=clock)
    await tts.start()
    assert state(tts, "system_voice") is BreakerState.OPEN
    with caplog.at_level(logging.CRITICAL, logger="TTS.emergency"):
        result = await tts.synthesize(TEXT)
    assert not result.success and result.backend == "silent_emergency"
    assert result.audio.duration_s == pytest.approx(tts.config.tts.emergency_silence_s, abs=1e-3)
    assert not result.audio.samples.any()
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)

    espeak.parent.mkdir()
    espeak.symlink_to(shutil.which("espeak-ng"))  # espeak-ng gets installed
    clock.advance(COOLDOWN)
    result = await tts.synthesize(TEXT)
    assert result.success and result.backend == "system_voice"
