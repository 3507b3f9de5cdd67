"""`bench {turn,turn-end,stt,llm,llm-rooms,tts,resources,playback,echo,satellites,buffers,...,all}`: the benchmarks in scripts/,
behind one command.

Each benchmark is a script with main(argv) -> int and --json (runnable on its own); this command
passes it the caller's --config/--set, runs it in this process, and gathers what each wrote into
one report with the machine it ran on (CPU, cores, load average before and after) and the models.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from Core.errors import LuxaError

if TYPE_CHECKING:
    from Orchestrator.cli import Context


HELP = "benchmarks: whole turns against baselines, each stage, resources (p50/p95, machine, models)"
SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"
BENCHES = {"turn": "bench_turn", "turn-end": "bench_turn_end", "stt": "bench_stt", "llm": "bench_llm",
           "llm-rooms": "bench_llm_rooms", "tts": "bench_tts",
           "resources": "bench_resources", "session": "bench_session",
           "answers": "bench_answers", "commands": "bench_commands", "playback": "bench_playback",
           "satellites": "bench_satellites", "echo": "bench_echo",
           "buffers": "bench_buffers"}
# `all` leaves these out: a 200-turn session takes about 20 minutes on 2 cores; satellites installs
# wyoming-satellite in a venv of its own and asks every clip 4 times per repetition (about 10 minutes);
# echo (20 replies, 40 interruptions through virtual audio) about 30; llm-rooms loads the model 4 times
# and asks 120 questions (about 3 minutes), for a choice of llm.contexts and llm.threads; buffers
# compares two past settings (about 2 minutes)
NOT_IN_ALL = {"session", "satellites", "echo", "llm-rooms", "buffers"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=[*BENCHES, "all"],
                        help="which benchmark; all = every one but session (20 min), satellites (10 min) and echo "
                             "(30 min), one JSON")
    parser.add_argument("--json", metavar="OUT", help="write every figure to this JSON file")
    parser.add_argument("--quick", action="store_true",
                        help="smaller runs (turn: commands + 2 FLEURS clips; turn-end: English commands and "
                             "2 FLEURS clips; tts: 1 run per cell; resources: 10 s idle; session: 100 turns; "
                             "commands: accuracy only; satellites: 1 repetition; echo: 4 replies, 3 interruptions per level; "
                             "llm-rooms: 2 of its 4 variants)")
    parser.add_argument("--clips", type=int, default=None, metavar="N", help="turn, satellites: only the first N clips")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="turn: where to draw the latency plot (default docs/turn_latency.png)")


def script_argv(name: str, args: argparse.Namespace, config_path: str | None, overrides: list[str],
                out: Path) -> list[str]:
    quick = args.quick
    argv = ["--json", str(out)]
    if config_path:
        argv += ["--config", config_path]
    for override in overrides:
        argv += ["--set", override]
    if quick and name in ("turn", "turn-end", "resources", "commands", "satellites", "echo", "llm-rooms"):
        argv.append("--quick")
    if quick and name == "tts":
        argv += ["--runs", "1"]
    if quick and name == "session":
        argv += ["--turns", "100"]
    if name in ("turn", "satellites") and args.clips is not None:
        argv += ["--clips", str(args.clips)]
    if name == "turn" and args.plot is not None:
        argv += ["--plot", args.plot]
    return argv


def load_script(module_name: str) -> ModuleType:
    """A script of scripts/ as a module (scripts/ is not a package; it is their import root)."""
    if str(SCRIPTS_DIR) not in sys.path:
        sys.path.insert(0, str(SCRIPTS_DIR))
    spec = importlib.util.spec_from_file_location(module_name, SCRIPTS_DIR / f"{module_name}.py")
    if spec is None or spec.loader is None:
        raise LuxaError(f"bench: scripts/{module_name}.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run(args: argparse.Namespace, ctx: Context) -> int:
    # Not a coroutine: each script runs its own event loop with asyncio.run().
    common = load_script("bench_common")
    names = [n for n in BENCHES if n not in NOT_IN_ALL] if args.what == "all" else [args.what]
    report: dict = {"machine": common.machine(), "models": common.models(ctx.config), "commands": {}, "results": {},
                    "seconds": {}, "failed": []}
    print(common.describe_machine(report["machine"]))
    print("models: " + "; ".join(f"{k} {v}" for k, v in report["models"].items()), flush=True)
    with tempfile.TemporaryDirectory(prefix="luxa-bench-") as tmp:
        for name in names:
            out = Path(tmp) / f"{name}.json"
            argv = script_argv(name, args, ctx.config_path, ctx.overrides, out)
            report["commands"][name] = f"python scripts/{BENCHES[name]}.py " + " ".join(argv[2:])
            print(f"\n== bench {name} ({report['commands'][name]})", flush=True)
            started = time.monotonic()
            code = load_script(BENCHES[name]).main(argv)
            report["seconds"][name] = round(time.monotonic() - started, 1)
            if code != 0 or not out.is_file():
                report["failed"].append(name)
                continue
            report["results"][name] = json.loads(out.read_text(encoding="utf-8"))
    report["machine"]["load_average_end"] = common.load_average()
    print(f"\nbench {args.what}: {sum(report['seconds'].values()):.0f} s; load average at the end "
          f"{report['machine']['load_average_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"figures: {args.json}")
    if report["failed"]:
        raise LuxaError(f"bench: {', '.join(report['failed'])} failed (see above)")
    return 0
