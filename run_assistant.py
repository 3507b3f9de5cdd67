#!/usr/bin/env python3
"""LUXA entry point.

The import guard goes in first so that no CUDA-capable library can load before the config's
GPU index is pinned (Orchestrator.cli pins it right after reading the config).
"""
import sys

from Core import gpu

gpu.install_import_guard()

from Orchestrator.cli import main  # noqa: E402  (must come after the guard)

if __name__ == "__main__":
    sys.exit(main())
