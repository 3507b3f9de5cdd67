"""Where a device's sample stream lies on the monotonic clock, for pairing the microphone with
what the speaker played (echo cancellation).

A device's samples do not jitter; the times its callbacks report do. Through PulseAudio they
move in a sawtooth of about 25 ms (its latency estimate), and on a loaded machine single blocks
come 50-250 ms off. The microphone took every block at its reported time, and the speaker's
reference re-anchored on any block 60 ms off: the echo moved against its reference by that much,
AEC3 leaked our own voice while it found the delay again, and barge-in fired on it (with three
or four busy processes beside the daemon: 2 of 10 solo replies, 3 of 3, and a fall back to
half_duplex at 9.7 dB in three runs; 0 of 20 with this clock, ERLE 26-27 dB).

So blocks are laid end to end, and the timeline follows the reported times only through a
running mean, one sample per block once that mean is more than a few ms off: enough for the
slow drift between the clocks (0.4 ms/s measured), never a jump. The anchor is one block's
reported time, up to ~20 ms off the mean, and slewing that away took 10-15 s: a reply in that time
(the first after start-up, the next after a barge-in restarted the stream) had its echo drift
against the reference by 1.5 ms/s, AEC3 leaked at each onset, and barge-in fired on our own voice.
While silence plays nothing can echo, so there the timeline goes to the mean at once.

A mean more than `jump` off is a real break (an underrun the device filled with silence, a
restarted stream): the timeline starts again at the block that showed it.
"""
from __future__ import annotations

SMOOTHING = 1 / 25  # the running mean's weight for one block: about a second of blocks


class SampleClock:
    """Block start positions (in samples of one rate) on a timeline that only the device moves."""

    def __init__(self, jump: int, restart: int, dead_band: int = 80) -> None:
        self.jump = jump  # a mean error this large: a break, re-anchor
        # a mean error within this is left alone (80 samples = 5 ms at 16 kHz: AEC3 does not mind a
        # steady offset, and the mean of a sawtooth wobbles)
        self.dead_band = dead_band
        self.restart = restart  # one block this far off: a new stream, re-anchor at once
        self._next: int | None = None  # where the block after the last one starts
        self._error = 0.0  # running mean of (reported - laid) start, in samples
        self.anchors = 0  # how often the timeline started again (stream starts, breaks)

    def place(self, reported: int, n: int, quiet: bool = False) -> int:
        """Where a block of `n` samples starts, given where its callback says it starts. `quiet`: it
        and the block before are silence, so a move of the timeline by up to `n` cannot shift an echo."""
        if self._next is None or abs(reported - self._next) > self.restart:
            return self._anchor(reported, n)
        self._error += (reported - self._next - self._error) * SMOOTHING
        if abs(self._error) > self.jump:
            return self._anchor(reported, n)
        start = self._next
        if abs(self._error) > self.dead_band:
            # while sound plays, slew by one sample (never a jump AEC3 must find again); in silence
            # go to the mean at once, so that the next reply starts on a settled timeline
            step = max(-n, min(n, round(self._error))) if quiet else (1 if self._error > 0 else -1)
            start += step
            self._error -= step
        self._next = start + n
        return start

    def reset(self) -> None:
        """A break the caller knows of (audio dropped): the next block anchors the timeline."""
        self._next = None

    def _anchor(self, reported: int, n: int) -> int:
        self.anchors += 1
        self._error = 0.0
        self._next = reported + n
        return reported
