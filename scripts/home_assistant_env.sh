#!/usr/bin/env bash
# A real Home Assistant core (2025.4.4) in a virtual environment of its own, outside the repository,
# for tests/intents/test_home_assistant_real.py. Home Assistant needs Python >= 3.13 (LUXA runs on
# 3.11), so it cannot share LUXA's environment. About 2-3 minutes and 820 MB; not part of `make test`.
#   bash scripts/home_assistant_env.sh        # prints the environment's hass
# Where: $LUXA_HA_VENV, default ~/.cache/luxa/home-assistant. Which Python: $HA_PYTHON, else
# python3.13 on PATH, else the newest pyenv 3.13. Safe to run again: a stamp says it is done.
set -euo pipefail
venv="${LUXA_HA_VENV:-$HOME/.cache/luxa/home-assistant}"
version=2025.4.4
# The frontend is a requirement Home Assistant installs at its first start (its manifest pins it);
# installed here, the test can start it with --skip-pip and reach nothing but loopback.
frontend=20250411.0
stamp="$venv/.luxa-homeassistant-$version"
if [ ! -f "$stamp" ]; then
  python=""
  # pyenv's python3.13 shim may exist yet refuse to run, so each candidate is tried
  for candidate in ${HA_PYTHON:-} python3.13 \
      $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python 2>/dev/null | sort -rV); do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
      python="$candidate"
      break
    fi
  done
  if [ -z "$python" ]; then
    echo "home_assistant_env: Home Assistant $version needs Python 3.13: set HA_PYTHON" >&2
    exit 1
  fi
  printf 'setup: installing Home Assistant %s in %s (%s)\n' "$version" "$venv" "$("$python" -V)" >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip --disable-pip-version-check -q install \
    "homeassistant==$version" "home-assistant-frontend==$frontend"
  "$venv/bin/hass" --version >/dev/null
  touch "$stamp"
fi
echo "$venv/bin/hass"
