#!/usr/bin/env bash
# A private PulseAudio server with a virtual microphone and speaker, for real end-to-end tests.
#   scripts/virtual_audio.sh start DIR   start it; prints the environment to export (eval it)
#   scripts/virtual_audio.sh stop DIR    stop it
# Devices: play into `vmic_feed` and the app records `vmic` (ALSA name of `vmic_feed.monitor`);
# the app plays to `vspeaker` and the test records `vspeaker.monitor`. The mic is a null sink's
# monitor rather than a remap-source: unloading and reloading a remap-source leaves PulseAudio 16
# replaying stale buffers, while a null sink comes back clean (tests unplug the mic that way). PortAudio (ALSA only on Debian) reaches them through ALSA's
# pulse plugin, configured by an asoundrc under DIR.
set -euo pipefail
action=${1:?usage: virtual_audio.sh start|stop DIR}
dir=$(mkdir -p "${2:?usage: virtual_audio.sh start|stop DIR}" && cd "$2" && pwd)

export XDG_RUNTIME_DIR="$dir/run" PULSE_RUNTIME_PATH="$dir/run/pulse" PULSE_STATE_PATH="$dir/state"
export PULSE_SERVER="unix:$dir/native" XDG_CONFIG_HOME="$dir/config" HOME="${HOME:-$dir}"

if [ "$action" = stop ]; then
  pactl exit >/dev/null 2>&1 || true
  [ -f "$dir/pulse.pid" ] && kill "$(cat "$dir/pulse.pid")" 2>/dev/null || true
  exit 0
fi
[ "$action" = start ] || { echo "usage: virtual_audio.sh start|stop DIR" >&2; exit 2; }

mkdir -p "$XDG_RUNTIME_DIR/pulse" "$PULSE_STATE_PATH" "$XDG_CONFIG_HOME/alsa"
chmod 700 "$XDG_RUNTIME_DIR"
cat > "$dir/luxa.pa" <<EOF
load-module module-native-protocol-unix auth-anonymous=1 socket=$dir/native
load-module module-null-sink sink_name=vspeaker rate=16000 channels=1
load-module module-null-sink sink_name=vmic_feed rate=16000 channels=1
load-module module-null-source source_name=silence rate=16000 channels=1
set-default-sink vspeaker
set-default-source vmic_feed.monitor
# defaults first: PulseAudio 16 moves existing streams to a new default source, loopbacks included
load-module module-loopback source=silence sink=vspeaker latency_msec=200
load-module module-loopback source=silence sink=vmic_feed latency_msec=200
EOF
cat > "$XDG_CONFIG_HOME/alsa/asoundrc" <<'EOF'
pcm.!default { type pulse; hint { show on; description "default (PulseAudio)" } }
ctl.!default { type pulse }
pcm.vspeaker { type pulse; device "vspeaker"; hint { show on; description "virtual speaker" } }
pcm.vmic { type pulse; device "vmic_feed.monitor"; hint { show on; description "virtual microphone" } }
pcm.vmic_feed { type pulse; device "vmic_feed"; hint { show on; description "virtual microphone feed" } }
pcm.vspeaker_monitor { type pulse; device "vspeaker.monitor"; hint { show on; description "what the speaker played" } }
EOF

# a server that was killed (tests restart it that way) leaves its pid file behind, and until its
# parent reaps it the pid still answers kill -0: a new server would refuse to start ("already running")
old_pid=$(cat "$PULSE_RUNTIME_PATH/pid" 2>/dev/null || true)
if [ -n "$old_pid" ] && ! ps -o stat= -p "$old_pid" 2>/dev/null | grep -qv Z; then
  rm -f "$PULSE_RUNTIME_PATH/pid"
fi
# -n: no default.pa (only our modules); root needs --system=no plus the warnings it prints
pulseaudio -n -F "$dir/luxa.pa" --exit-idle-time=-1 --daemonize=yes --use-pid-file=yes \
  --log-target=file:"$dir/pulse.log" >/dev/null 2>&1 || true
for _ in $(seq 1 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
pactl info >/dev/null 2>&1 || { echo "virtual audio: PulseAudio did not start (see $dir/pulse.log)" >&2; exit 1; }
pid=$(cat "$PULSE_RUNTIME_PATH/pid" 2>/dev/null || pgrep -n -f "pulseaudio -n -F $dir/luxa.pa" || true)
echo "$pid" > "$dir/pulse.pid"
# an idle null sink sleeps in 2 s blocks: wait until a fresh recording gets data
# (parecord dies of SIGPIPE once head has its bytes: under pipefail only the byte count may decide)
for _ in $(seq 1 40); do
  got=$(timeout 1 parecord --device=vspeaker.monitor --raw --format=s16le --rate=16000 --channels=1 2>/dev/null \
    | head -c 3200 | wc -c || true)
  [ "$got" -ge 3200 ] && break
  sleep 0.1
done
for var in XDG_RUNTIME_DIR PULSE_RUNTIME_PATH PULSE_STATE_PATH PULSE_SERVER XDG_CONFIG_HOME; do
  printf 'export %s=%q\n' "$var" "${!var}"
done
printf 'export ALSA_CONFIG_PATH=%q\n' "/usr/share/alsa/alsa.conf"
