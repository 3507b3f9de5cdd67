"""`api-key`: print the control API key, creating it (0600, secrets.token_urlsafe) if missing.

The install step: run it before opening the API beyond loopback. A running daemon reads the key
at start-up, so restart it after --rotate.
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from Orchestrator.cli import Context


HELP = "print the control API key (created with 0600 permissions when missing); --rotate replaces it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rotate", action="store_true", help="replace the key (restart the daemon afterwards)")
    parser.add_argument("--path", action="store_true", help="print where the key file is instead of the key")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from Orchestrator.api.security import create_key, key_path, read_key

    path = key_path(ctx.config)
    key = None if args.rotate else read_key(path)
    if key is None:
        key = create_key(path, replace=args.rotate)
        print(f"luxa: wrote a new API key to {path} (mode 0600)", file=sys.stderr)
    print(path if args.path else key)
    return 0
