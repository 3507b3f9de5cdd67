"""`say`: being built (see the open issue); the module exists so the command line is complete."""
from __future__ import annotations

from Core.errors import LuxaError

HELP = "say (not built yet)"


def add_arguments(parser) -> None:
    return None


def run(args, ctx) -> int:
    raise LuxaError("say is not built yet")
