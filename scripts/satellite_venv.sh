#!/usr/bin/env bash
# wyoming-satellite 1.0.0 in a virtual environment of its own (.venv-satellite/): it pins wyoming==1.4.1,
# LUXA uses 1.10.2. The satellite tests (tests/e2e/test_satellites.py) run it as a subprocess.
# Safe to run again: a stamp says it is done. Prints the environment's python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-satellite
stamp="$venv/.luxa-wyoming-satellite-1.0.0"
if [ ! -f "$stamp" ]; then
  printf 'setup: installing wyoming-satellite 1.0.0 in %s\n' "$venv" >&2
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip --disable-pip-version-check -q install 'wyoming-satellite==1.0.0'
  "$venv/bin/python" -c 'import wyoming_satellite' >/dev/null
  touch "$stamp"
fi
echo "$PWD/$venv/bin/python"
