"""Barge-in on speakers (audio.barge_in: auto -> aec), through real audio: the speaker's output comes
back into the virtual mic ~65 ms late, 6 dB quieter, reverberant (audio_harness.EchoPath). One
daemon for the module; the full counts (20 replies, 20 interruptions per level) are in
`python run_assistant.py bench echo` (scripts/bench_echo.py, which these cases share).

Not here yet: the user interrupting at 0 / -6 dB. On the final code it failed in the e2e run (the
reply to the no-echo reference question was cut by a barge-in on the reply's first words, and the
rig's turn bookkeeping lost step); see docs/BENCHMARKS.md and issue 19's report."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from audio_harness import have_pulseaudio, have_sox
from bench_echo import Rig

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not (have_pulseaudio() and have_sox()),
                                                  reason="needs PulseAudio and sox (scripts/setup.sh)")]


@pytest.fixture(scope="module")
def rig(room, tmp_path_factory):
    luxa = Rig(room, "auto", tmp_path_factory.mktemp("rig"))  # auto: aec, the canceller being installed
    yield luxa
    luxa.close()


# Not in `make test` while issue 19 is open: in the clean-clone CI run AEC3 reduced the echo by only
# 8.7 dB on the rig and the daemon fell back to half_duplex (as designed), so the ERLE check failed;
# aec is not the default for that reason. Run with `pytest tests/e2e/test_echo.py --long`.
@pytest.mark.long
def test_luxa_speaking_alone_never_interrupts_itself(rig, question):
    assert any("barge-in: aec" in line for line in rig.luxa.lines), "auto did not choose aec"
    fired = [rig.solo_reply(question) for _ in range(2)]
    assert not any(fired), f"barge-in fired on the assistant's own voice: {fired}"
    erle = [float(m[1]) for line in rig.luxa.lines if (m := re.search(r"echo cancellation: ERLE (-?[\d.]+) dB", line))]
    assert erle and erle[-1] >= 10.0, f"measured ERLE: {erle}"
    print(f"\nsolo replies: {len(fired)}, barge-ins on its own voice: 0; ERLE {erle[-1]:.1f} dB; "
          f"echo at the mic {rig.session.echo_dbfs} dBFS, {rig.session.delay_ms} ms late")


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
