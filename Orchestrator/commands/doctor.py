"""`doctor`: can the assistant run here? Checks config, models, GPU, audio and every backend for real.

Exit 0 when it can run (warnings allowed: no microphone still leaves --text), 1 on a blocking
problem, each with what to do about it.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from Core.errors import LuxaError

if TYPE_CHECKING:
    from Config.schema import LuxaConfig
    from Orchestrator.cli import Context


HELP = "check config, models, audio, GPU and every backend; non-zero exit on a blocking problem"
PROBE_TEXT = "Hello, this is a test of the assistant."


@dataclass
class Check:
    name: str
    status: str  # ok | warn | FAIL
    detail: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="skip loading the models")
    parser.add_argument("--echo-test", action="store_true",
                        help="play a sweep on the speaker, record the mic: the echo path's delay and what "
                             "the echo canceller removes of it (about 5 s, audible)")


async def run(args: argparse.Namespace, ctx: Context) -> int:
    from Orchestrator.commands.models import check_configured

    cfg = ctx.config
    checks = [Check("config", "ok", ctx.config_path or "Config/assistant.yaml (defaults)")]
    for where, _name, path, error in check_configured(cfg):
        checks.append(Check(f"model {where}", "ok" if error is None else "FAIL", path or error or ""))
    g = ctx.gpu
    checks.append(Check("gpu", "ok" if g.on_gpu else "warn",
                        f"cuda:0 = card {g.index} {g.name} ({g.free_mb} MiB free)" if g.on_gpu else f"CPU only: {g.reason}"))
    checks += _audio_checks(cfg)
    checks += _echo_checks(cfg, args.echo_test)
    if not args.quick and all(c.status != "FAIL" for c in checks if c.name.startswith("model")):
        checks += await _backend_checks(ctx)
    _print(checks)
    failed = [c for c in checks if c.status == "FAIL"]
    if failed:
        print(f"\n{len(failed)} blocking problem(s): fix the FAIL lines above (most are fixed by `make setup`).")
        return 1
    print("\nLUXA can run here.")
    return 0


def _audio_checks(cfg: LuxaConfig) -> list[Check]:
    from Orchestrator.audio_io import find_device

    rows = []
    for kind, spec in (("input", cfg.audio.input_device), ("output", cfg.audio.output_device)):
        try:
            index = find_device(spec, kind)
            rows.append(Check(f"audio {kind}", "ok", "system default" if index is None else f"device {index}"))
        except LuxaError as err:  # not blocking: --text and the API work without audio devices
            rows.append(Check(f"audio {kind}", "warn", str(err)))
    return rows


def _echo_checks(cfg: LuxaConfig, self_test: bool) -> list[Check]:
    """The barge-in mode this config gets, and with --echo-test the echo path itself."""
    from Orchestrator.echo import EchoCanceller, EchoUnavailable, linear_filter
    from Orchestrator.echo import self_test as aec_self_test

    a = cfg.audio
    rows = []
    if a.barge_in not in ("auto", "aec"):
        rows.append(Check("barge-in", "ok", f"{a.barge_in} (configured; no echo cancellation)"))
    else:
        try:
            EchoCanceller(a.aec_noise_suppression)
            erle = aec_self_test()
            good = erle >= a.aec_min_erle_db
            words = "speexdsp's filter" if linear_filter() is not None else "AEC3 (speexdsp unavailable)"
            rows.append(Check("barge-in", "ok" if good else "warn",
                              f"aec: WebRTC AEC3 self-test {erle:.1f} dB (needs {a.aec_min_erle_db:g}); "
                              f"words said over a reply cleaned by {words}" if good else
                              f"half_duplex: the echo canceller's self-test reached only {erle:.1f} dB"))
        except EchoUnavailable as err:
            rows.append(Check("barge-in", "warn", f"half_duplex (loud speech only interrupts): {err}"))
    if self_test:
        rows.append(_echo_path_check(cfg))
    return rows


def _echo_path_check(cfg: LuxaConfig) -> Check:
    from Orchestrator.audio_io import find_device
    from Orchestrator.echo import measure_echo_path

    try:
        report = measure_echo_path(find_device(cfg.audio.input_device, "input"),
                                   find_device(cfg.audio.output_device, "output"))
    except Exception as err:  # no device, no library: say so, the rest of doctor goes on
        return Check("echo path", "warn", f"self-test failed: {type(err).__name__}: {err}")
    if report.delay_ms is None:
        return Check("echo path", "ok", f"the mic does not hear the speaker (mic at {report.echo_dbfs:.0f} dBFS "
                                        "during the sweep): a headset, or the speaker is muted")
    erle = report.erle_db or 0.0
    good = erle >= cfg.audio.aec_min_erle_db
    return Check("echo path", "ok" if good else "warn",
                 f"delay {report.delay_ms:.0f} ms, echo at {report.echo_dbfs:.0f} dBFS, "
                 f"cancelled by {erle:.1f} dB" + ("" if good else f" (aec needs {cfg.audio.aec_min_erle_db:g})"))


async def _backend_checks(ctx: Context) -> list[Check]:
    """Load every stage and run each backend once on real input."""
    from Orchestrator.assistant import Assistant

    assistant = Assistant(ctx.config, ctx.gpu)
    rows: list[Check] = []
    try:
        await assistant.start()
        rows.append(Check("load", "ok", ", ".join(f"{k} {v:.1f} s" for k, v in assistant.load_seconds.items())))
        sample = None
        for name, backend in sorted(ctx.config.tts.backends.items(), key=lambda kv: kv[1].priority):
            if not backend.enabled:
                continue
            result = await assistant.tts.synthesize(PROBE_TEXT, backend=name)
            good = result.success and result.backend == name
            rows.append(Check(f"tts {name}", "ok" if good else "FAIL",
                              f"{result.latency_s * 1000:.0f} ms" if good else (result.error or "no audio")))
            if good and sample is None:
                sample = result.audio
        if sample is not None:
            heard = await assistant.stt.transcribe(sample, language="en")
            rows.append(Check("stt", "ok" if heard.text.strip() else "FAIL",
                              f"{heard.backend}: {heard.text.strip()!r}" if heard.text.strip() else "heard nothing"))
        reply = await assistant.llm.chat("Say hello.")
        real = reply.backend != "apology"
        rows.append(Check("llm", "ok" if real else "FAIL",
                          f"{reply.backend}: {reply.reply[:60]!r}" if real else "every model failed: only the apology"))
    except LuxaError as err:
        rows.append(Check("load", "FAIL", str(err)))
    finally:
        await assistant.close()
    return rows


def _print(checks: list[Check]) -> None:
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"{c.status:<4}  {c.name:<{width}}  {c.detail}")
