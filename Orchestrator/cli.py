"""Command line: global options, subcommands, and one-line errors instead of tracebacks."""
from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from Config import LuxaConfig, load_config
from Core import gpu
from Core.errors import LuxaError
from Core.logs import setup_logging
from Core.memory import limit_malloc_arenas
from Core.niceness import set_niceness

log = logging.getLogger("luxa")

# subcommand -> module in Orchestrator.commands
COMMANDS = {
    "devices": "devices",
    "doctor": "doctor",
    "transcribe": "transcribe",
    "say": "say",
    "chat": "chat",
    "turn": "turn",
    "models": "models",
    "service": "service",
    "voices": "voices",
    "bench": "bench",
    "serve": "serve",
    "api-key": "api_key",
    "wyoming": "wyoming",
    "satellites": "satellites",
}


@dataclass
class Context:
    """What every command gets: the validated config and the GPU decision, made once."""

    config: LuxaConfig
    config_path: str | None
    overrides: list[str] = field(default_factory=list)
    _gpu: gpu.GpuStatus | None = None

    @property
    def gpu(self) -> gpu.GpuStatus:
        if self._gpu is None:
            g = self.config.gpu
            self._gpu = gpu.check(g.index, g.name_pattern, g.min_free_mb, g.on_missing)
        return self._gpu


def _add_global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    parser.add_argument("--config", metavar="FILE", default=d(None), help="YAML config (default Config/assistant.yaml)")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", dest="overrides", default=d([]),
                        help="override any config key, e.g. --set stt.beam_size=5 (repeatable)")
    parser.add_argument("--log-level", default=d(None), choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="override logging.level")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    parser = argparse.ArgumentParser(
        prog="run_assistant.py",
        description="LUXA, a fully local voice assistant. With no subcommand: the voice loop (mic -> speaker).",
    )
    _add_global_options(parser, suppress=False)
    parser.add_argument("--text", action="store_true", help="type instead of speaking")
    parser.add_argument("--input-device", default=None, help="microphone index or name (overrides audio.input_device)")
    parser.add_argument("--output-device", default=None, help="speaker index or name (overrides audio.output_device)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, ModuleType] = {}
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"Orchestrator.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        _add_global_options(p, suppress=True)
        module.add_arguments(p)
        modules[name] = module
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
        logging_cfg = config.logging
        setup_logging(args.log_level or logging_cfg.level, logging_cfg.format, logging_cfg.file,
                      logging_cfg.file_max_bytes, logging_cfg.file_backups)
        gpu.pin(config.gpu.index)
        limit_malloc_arenas(config.service.malloc_arenas)
        set_niceness(config.service.nice)  # children (piper, espeak) inherit it
        ctx = Context(config, args.config, list(args.overrides))
        if args.command is None:
            from Orchestrator.commands import listen

            return _run(listen.run(args, ctx))
        return _run(modules[args.command].run(args, ctx))
    except LuxaError as err:
        print(f"luxa: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("luxa: interrupted", file=sys.stderr)
        return 130


def _run(result: int | None | Coroutine[Any, Any, int | None]) -> int:
    """Commands may be plain functions or coroutines; both return an exit code."""
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)
