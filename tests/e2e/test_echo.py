"""Barge-in on speakers (audio.barge_in: auto -> aec), through real audio: the speaker's output comes
back into the virtual mic ~65 ms late, 6 dB quieter, reverberant (audio_harness.EchoPath). One
daemon for the module; the full counts (20 replies, 20 interruptions per level) are in
`python run_assistant.py bench echo` (scripts/bench_echo.py, which these cases share).

The user interrupting at the echo's level (0 dB, `--long`): barge-in fires and playback stops.
What is heard of the interruption is printed, not asserted: while both talk AEC3's suppressor
muffles the user's first words, and they are often misheard (issue 19 is open on that; `bench
echo` counts it)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from audio_harness import have_pulseaudio, have_sox
from bench_echo import Rig, at_level, english_clips

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not (have_pulseaudio() and have_sox()),
                                                  reason="needs PulseAudio and sox (scripts/setup.sh)")]
STOP_MAX_S = 3.0  # the user's first word -> speaker silent (barge_in_min_ms + detection + device buffer, loaded CI)


@pytest.fixture(scope="module")
def rig(room, tmp_path_factory):
    luxa = Rig(room, "auto", tmp_path_factory.mktemp("rig"))  # auto: aec, the canceller being installed
    yield luxa
    luxa.close()


# Long form while issue 19 is open. In a clean-clone CI run AEC3 reduced the echo by only 8.7 dB and
# the daemon fell back to half_duplex: the mic's frames then took each callback's time, which a loaded
# machine moves by tens of ms (fixed: Core.clock). Since then this test's first reply still cut
# itself in 2 of 4 runs: the reference's timeline was still slewing off its start-up anchor (fixed:
# it settles while silence plays; fresh daemons' first replies cut 2 of 6 before, 0 of 6 after).
# Long until a clean-clone CI run shows it steady. Run with `pytest tests/e2e/test_echo.py --long`.
@pytest.mark.long
def test_luxa_speaking_alone_never_interrupts_itself(rig, question):
    assert any("barge-in: aec" in line for line in rig.luxa.lines), "auto did not choose aec"
    fired = [rig.solo_reply(question) for _ in range(2)]
    assert not any(fired), f"barge-in fired on the assistant's own voice: {fired}"
    erle = [float(m[1]) for line in rig.luxa.lines if (m := re.search(r"echo cancellation: ERLE (-?[\d.]+) dB", line))]
    assert erle and erle[-1] >= 10.0, f"measured ERLE: {erle}"
    print(f"\nsolo replies: {len(fired)}, barge-ins on its own voice: 0; ERLE {erle[-1]:.1f} dB; "
          f"echo at the mic {rig.session.echo_dbfs} dBFS, {rig.session.delay_ms} ms late")


# Long form while issue 19 is open: on the rig a command at the echo's level stopped the reply in 13 of
# 14 tries this session (the miss: barge-in never fired), too few for CI
@pytest.mark.long
def test_the_user_interrupts_at_the_echos_level_and_playback_stops(rig, question, corpus_dir, tmp_path):
    clip = next(c for c in english_clips(corpus_dir) if c.name == "living_room_light_en.wav")
    wav = at_level(clip, rig.session.echo_dbfs or -27.0, tmp_path)
    case = rig.interrupt(question, clip, wav, 0.0)
    print(f"\n0 dB: barge-in {case.barge_in}, stop {case.stop_s} s after the first word, heard {case.heard!r} "
          f"(WER {case.wer})")
    assert case.barge_in, "a normal voice over the reply did not interrupt it"
    assert case.stop_s is not None and case.stop_s <= STOP_MAX_S, f"playback went on: {case.stop_s}"


def test_doctor_measures_the_echo_path(room, repo_root):
    out = subprocess.run([sys.executable, "run_assistant.py", "--set", "audio.input_device=vmic",
                          "--set", "audio.output_device=vspeaker", "doctor", "--quick", "--echo-test"],
                         cwd=repo_root, env=room.env, capture_output=True, text=True, timeout=120).stdout
    line = next(row for row in out.splitlines() if "echo path" in row)
    m = re.search(r"(ok|warn) +echo path +delay (\d+) ms, echo at (-?\d+) dBFS, cancelled by (-?[\d.]+) dB", line)
    assert m, line
    # The rig delays the echo 65 ms; the devices' buffers add a few hundred more.
    assert 65 <= int(m[2]) <= 1500, line
    # The canceller must be doing something; whether it reaches aec's 10 dB depends on the machine's
    # load (8.7-20 dB seen on the rig), and the verdict must say which side of 10 dB it landed.
    erle = float(m[4])
    assert erle >= 3.0, line
    assert (m[1] == "ok") == (erle >= 10.0), line
