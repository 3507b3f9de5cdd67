"""`devices`: list audio devices, or `--pick` the microphone and speaker and save the choice."""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from Config.loader import DEFAULT_CONFIG_PATH
from Core.errors import LuxaError

if TYPE_CHECKING:
    from Orchestrator.cli import Context


HELP = "list audio input/output devices (index, name, channels, default rate); --pick to choose"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pick", action="store_true", help="ask which microphone and speaker to use and save it")
    parser.add_argument("--json", action="store_true", help="one JSON object per device")


def query_devices() -> list[dict]:
    try:
        import sounddevice as sd
    except OSError as err:  # PortAudio missing: the library itself fails to load
        raise LuxaError(f"audio is unavailable: {err} (install libportaudio2)") from None
    default_in, default_out = sd.default.device
    rows = []
    for index, dev in enumerate(sd.query_devices()):
        rows.append({
            "index": index, "name": dev["name"], "inputs": dev["max_input_channels"],
            "outputs": dev["max_output_channels"], "default_rate": int(dev["default_samplerate"]),
            "default_input": index == default_in, "default_output": index == default_out,
        })
    return rows


def run(args: argparse.Namespace, ctx: Context) -> int:
    rows = query_devices()
    if args.json:
        import json

        for row in rows:
            print(json.dumps(row))
    else:
        print(f"{'idx':>3}  {'in':>3} {'out':>3}  {'rate':>6}  name")
        for r in rows:
            mark = ("<" if r["default_input"] else " ") + (">" if r["default_output"] else " ")
            print(f"{r['index']:>3}{mark}{r['inputs']:>3} {r['outputs']:>3}  {r['default_rate']:>6}  {r['name']}")
        print("< default input, > default output")
    if not rows:
        print("no audio devices found: use --text to type instead of speaking", file=sys.stderr)
        return 1
    if args.pick:
        return _pick(rows, ctx.config_path or str(DEFAULT_CONFIG_PATH))
    return 0


def _pick(rows: list[dict], config_path: str) -> int:
    mic = _ask("microphone", [r for r in rows if r["inputs"] > 0])
    speaker = _ask("speaker", [r for r in rows if r["outputs"] > 0])
    save_device_choice(config_path, mic, speaker)
    print(f"saved to {config_path}: audio.input_device={mic!r}, audio.output_device={speaker!r}")
    return 0


def _ask(what: str, rows: list[dict]) -> str | None:
    if not rows:
        raise LuxaError(f"no {what} found")
    choice = input(f"{what} index (empty = system default): ").strip()
    if not choice:
        return None
    match = [r for r in rows if str(r["index"]) == choice]
    if not match:
        raise LuxaError(f"{choice!r} is not a {what} index")
    return match[0]["name"]  # names survive a reboot; indexes move when devices come and go


def save_device_choice(config_path: str, mic: str | None, speaker: str | None) -> None:
    """Edit the two lines in place so the user's comments survive."""
    from pathlib import Path

    import yaml

    path = Path(config_path)
    text = path.read_text(encoding="utf-8")
    for key, value in (("input_device", mic), ("output_device", speaker)):
        rendered = "null" if value is None else yaml.safe_dump(value, default_style='"').strip()
        text, n = re.subn(rf"^(\s+{key}:)[^#\n]*", _replacement(rendered), text, count=1, flags=re.M)
        if n == 0:
            raise LuxaError(f"{path} has no audio.{key} line to update")
    path.write_text(text, encoding="utf-8")


def _replacement(rendered: str) -> Callable[[re.Match[str]], str]:
    return lambda m: f"{m.group(1)} {rendered}   "
