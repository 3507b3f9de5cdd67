#!/usr/bin/env python3
"""Benchmark barge-in on speakers: LUXA on the private PulseAudio server with an echo path.

What the speaker plays comes back into the microphone delayed, attenuated and reverberant
(audio_harness.EchoPath), mixed with the user's speech from the corpus. With it:
  - LUXA speaking alone for N replies: how often barge-in fires on its own voice, in `aec` mode
    and, as the control, in `headset` mode (no echo cancellation);
  - the user interrupting at a speech-to-echo ratio of 0 dB and -6 dB: how often barge-in fires,
    how fast playback stops, and the WER of the interruption against the same speech without echo;
  - the ERLE and CPU per 10 ms frame the daemon measured, and both candidate libraries (WebRTC
    AEC3, speexdsp) run offline on the same recordings, with and without noise suppression.

    python scripts/bench_echo.py [--replies 20] [--interruptions 20] [--control 5] [--quick] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio_harness import AssistantProcess, EchoPath, VirtualAudio, first_loud, first_quiet_stretch  # noqa: E402
from bench_common import default_corpus, percentiles  # noqa: E402

# replies long enough to talk over, short enough that a case takes seconds (intents off: the
# commands must reach the model, not the light switch; no history: with it the 135M model's stories
# shrank to "I'm here to help you." after a few interrupted turns, and a reply that ends before the
# user's first word leaves nothing to interrupt)
REPLY_ARGS = ["--set", "intents.enabled=false", "--set", "llm.max_tokens=100", "--set", "llm.history_token_budget=0",
              "--set", "llm.system_prompt=You are a storyteller. Always answer with a long story of at least "
                       "eight sentences."]
INTERRUPT_AFTER_S = 1.5  # into the reply: the user talks over the first sentence
QUIET_S = 0.5  # silence this long on the speaker after the interruption: playback stopped (sentence gaps are shorter)
REPLY_LEFT_S = 1.0  # a reply that was not interrupted must have played this long over the user's words
TRIES = 3  # a reply that ended before the user's first words is no interruption: asked again


@dataclass
class Clip:
    name: str
    text: str
    samples: np.ndarray  # 16 kHz


@dataclass
class Case:
    clip: str
    ser_db: float
    barge_in: bool = False
    heard: str = ""
    wer: float | None = None
    clean_wer: float | None = None  # the same clip at the same level, no reply playing
    stop_s: float | None = None  # the user's first word -> speaker silent
    no_reply: bool = False  # every try's reply ended before the user's first word (counted as missed)


@dataclass
class Session:
    mode: str
    replies: int = 0
    self_barge_ins: int = 0
    cases: list[Case] = field(default_factory=list)
    erle_db: float | None = None
    cpu_us_per_10ms: float | None = None
    words_erle_db: float | None = None  # speexdsp's filter, on the words said over a reply
    echo_dbfs: float | None = None
    delay_ms: float | None = None
    recordings: list[tuple[str, str]] = field(default_factory=list)  # (speaker, mic) WAVs of solo replies


def words(text: str) -> str:
    return " ".join(re.sub(r"[^\w' ]", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return float(jiwer.wer(words(reference), words(hypothesis) or "<empty>"))


def active_dbfs(samples: np.ndarray, floor_dbfs: float = -50.0) -> float:
    """RMS level of the 10 ms windows above `floor_dbfs`: the level of speech, not of its pauses."""
    win = samples[: len(samples) // 160 * 160].reshape(-1, 160).astype(np.float64)
    rms = np.sqrt(np.mean(win ** 2, axis=1))
    loud = rms[rms > 10 ** (floor_dbfs / 20)]
    return float(20 * np.log10(np.sqrt(np.mean(loud ** 2)))) if loud.size else -120.0


def english_clips(corpus: Path) -> list[Clip]:
    from Core.audio import load_audio

    clips = []
    for line in (corpus / "commands" / "transcripts.tsv").read_text().splitlines():
        name, _, text = line.partition("\t")
        if name and text:
            clips.append(Clip(name, text, load_audio(corpus / "commands" / name).to_rate(16000).samples))
    for ogg in sorted((corpus / "fleurs").glob("fleurs-en-*.ogg")):
        clips.append(Clip(ogg.stem, ogg.with_suffix(".txt").read_text().strip(),
                          load_audio(ogg).to_rate(16000).samples))
    return clips


def at_level(clip: Clip, dbfs: float, folder: Path) -> Path:
    path = folder / f"{clip.name}_{dbfs:+.0f}.wav"
    if not path.exists():
        gain = 10 ** ((dbfs - active_dbfs(clip.samples)) / 20)
        soundfile.write(str(path), np.clip(clip.samples * gain, -1, 1).astype(np.float32), 16000)
    return path


def echo_delay_ms(speaker: np.ndarray, mic: np.ndarray) -> float | None:
    """Where the speaker's signal lies in the mic recording (both recorders start together)."""
    from scipy.signal import correlate

    n = min(len(speaker), len(mic))
    if n < 16000 or active_dbfs(speaker[:n]) < -60:
        return None
    c = correlate(mic[:n], speaker[:n], mode="full", method="fft")[n - 1:n - 1 + 8000]  # 0-500 ms
    return float(np.argmax(np.abs(c)) / 16.0)


class Rig:
    """One daemon in one barge-in mode on the virtual devices, with the echo path."""

    def __init__(self, audio: VirtualAudio, mode: str, folder: Path, extra: list[str] | None = None):
        self.audio, self.folder, self.mode = audio, folder, mode
        self.luxa = AssistantProcess(audio.env, "--set", f"audio.barge_in={mode}", *REPLY_ARGS, *(extra or []))
        self.luxa.wait_for("LUXA is listening", timeout=180)
        self.session = Session(mode)
        self._n = 0

    def close(self) -> None:
        self.luxa.stop()
        self.luxa.kill()
        for line in self.luxa.lines:
            m = re.search(r"echo cancellation: ERLE (-?[\d.]+) dB .* ([\d.]+) us per 10 ms", line)
            if m:
                self.session.erle_db, self.session.cpu_us_per_10ms = float(m[1]), float(m[2])
            m = re.search(r"speexdsp's, for the words: (-?[\d.]+) dB", line)
            if m:
                self.session.words_erle_db = float(m[1])

    def _settle(self, quiet_s: float = 3.0, limit_s: float = 90.0) -> None:
        """Until the daemon has printed nothing for `quiet_s` (a reply to its own voice may follow one)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            try:
                self.luxa.wait_for(".", timeout=quiet_s)
            except AssertionError:
                return

    def ask(self, question: Path) -> None:
        self.luxa.skip_pending()
        self.audio.play_into_mic(question).wait(timeout=60)
        self.luxa.wait_for(r"^you: ", timeout=90)

    def solo_reply(self, question: Path, settle: bool = True) -> bool:
        """A reply nobody talks over; True when barge-in fired on it (on the assistant's own voice).
        `settle`: then wait until the daemon has answered what it heard of its own voice (up to 90 s:
        in headset mode each answer interrupts itself again), so that the next case starts clean."""
        self._n += 1
        spk = self.audio.record(self.folder / f"{self.mode}-solo{self._n}-speaker.wav")
        mic = self.audio.record(self.folder / f"{self.mode}-solo{self._n}-mic.wav", device="vmic_feed.monitor")
        time.sleep(0.3)
        self.ask(question)
        end = self.luxa.wait_for(r"^luxa: |^luxa \(interrupted\)", timeout=180)
        fired = end.startswith("luxa (interrupted)")
        if fired and settle:
            self._settle()
        played, heard = spk.stop(), mic.stop()
        self.session.replies += 1
        self.session.self_barge_ins += fired
        self.session.recordings.append((str(spk.path), str(mic.path)))
        if self.session.echo_dbfs is None and not fired:
            self.session.echo_dbfs = round(active_dbfs(heard[int(2.5 * 16000):]), 1)  # after the question
            self.session.delay_ms = echo_delay_ms(played, heard)
        return fired

    def clean_transcript(self, wav: Path) -> str:
        """The clip asked while nothing plays (the reference for the interruption's WER)."""
        self.ask_and_wait(wav)
        return self._heard

    def ask_and_wait(self, wav: Path) -> None:
        """Ask, and wait until the whole answer has played. A clip that pauses mid-sentence may be cut
        by a false end (issue 18): its rest interrupts the first answer and gets one of its own. All
        of it is what was heard, and the next case waits for that answer too: asked sooner, the next
        question was spoken over its start, not heard, and the bench gave up after 90 s."""
        self.luxa.skip_pending()
        self.audio.play_into_mic(wav).wait(timeout=60)
        heard: list[str] = []
        pattern = r"^you: |^luxa: |^luxa \(interrupted\)"
        line = self.luxa.wait_for(pattern, timeout=90)
        while not line.startswith("luxa: "):
            heard += [line.removeprefix("you: ")] if line.startswith("you: ") else []
            try:  # after an interruption the rest may be heard as nothing: then no answer comes
                line = self.luxa.wait_for(pattern, timeout=30 if line.startswith("luxa (") else 180)
            except AssertionError:
                break
        self._heard = " ".join(heard)

    def interrupt(self, question: Path, clip: Clip, wav: Path, ser_db: float) -> Case:
        """Talk over a reply; again (up to TRIES) when the reply ended before the user spoke."""
        for _ in range(TRIES):
            case = self._interrupt(question, clip, wav, ser_db)
            if case is not None:
                break
            print(f"  the reply ended before {clip.name} began: asked again", flush=True)
        else:
            case = Case(clip.name, ser_db, no_reply=True)  # never a reply long enough: counted as missed
        self.session.cases.append(case)
        return case

    def _interrupt(self, question: Path, clip: Clip, wav: Path, ser_db: float) -> Case | None:
        case = Case(clip.name, ser_db)
        onset = first_loud(clip.samples, level=0.005) or 0.0
        self._n += 1
        spk = self.audio.record(self.folder / f"{self.mode}-int{self._n}-speaker.wav")
        time.sleep(0.3)
        self.ask(question)
        self.luxa.wait_for(r"^\[speaking\]", timeout=180)
        time.sleep(INTERRUPT_AFTER_S)
        at = time.monotonic() - spk.started
        player = self.audio.play_into_mic(wav)
        started = time.monotonic()
        try:
            end = self.luxa.wait_for(r"^luxa \(interrupted\)|^luxa: ", timeout=len(clip.samples) / 16000 + 10)
            case.barge_in = end.startswith("luxa (interrupted)")
        except AssertionError:
            case.barge_in = False
        ended_early = not case.barge_in and time.monotonic() - started < onset + 1.0
        player.wait(timeout=60)
        if ended_early:
            self._settle()
            spk.stop()
            return None
        if case.barge_in:
            try:
                case.heard = self.luxa.wait_for(r"^you: ", timeout=90).removeprefix("you: ")
                self.luxa.wait_for(r"^luxa: |^luxa \(interrupted\)", timeout=180)
            except AssertionError:  # it stopped, then heard no words ("nothing heard"): none of them was heard
                case.heard = ""
            case.wer = round(wer(clip.text, case.heard), 3)
        else:
            self._settle()
        played = spk.stop()
        stopped = first_quiet_stretch(played, after_s=at, min_s=QUIET_S)
        if not case.barge_in and stopped is not None and stopped - at - onset < REPLY_LEFT_S:
            return None  # the reply ended by itself too soon after the user's first word to count
        case.stop_s = round(stopped - at - onset, 2) if stopped is not None and case.barge_in else None
        return case


def offline_candidates(recordings: list[tuple[str, str]]) -> dict:
    """Each library on the solo replies' recordings (the mic heard only the echo): ERLE and CPU."""
    speaker = np.concatenate([soundfile.read(s, dtype="float32")[0] for s, _ in recordings])
    mic = np.concatenate([soundfile.read(m, dtype="float32")[0] for _, m in recordings])
    n = min(len(speaker), len(mic)) // 160 * 160
    speaker, mic = speaker[:n], mic[:n]
    out: dict = {}
    runners = {"webrtc-aec3 (pywebrtc-audio)": _webrtc, "speexdsp 200 ms tail": lambda: _speex(200),
               "speexdsp 400 ms tail": lambda: _speex(400)}
    for name, make in runners.items():
        try:
            process = make()
        except Exception as err:  # a candidate not installed: say so, measure the others
            out[name] = {"error": f"{type(err).__name__}: {err}"}
            continue
        cleaned = np.zeros_like(mic)
        started = time.thread_time()  # this thread's CPU: the machine may be busy with other work
        for i in range(0, n, 160):
            cleaned[i:i + 160] = process(mic[i:i + 160], speaker[i:i + 160])
        cpu = (time.thread_time() - started) / (n // 160) * 1e6
        out[name] = {"erle_db": round(_erle(mic, cleaned, speaker), 1), "cpu_us_per_10ms": round(cpu, 1)}
    return out


def offline_noise_suppression(far: np.ndarray, clips: list[Clip], echo_gain_db: float = -6.0) -> dict:
    """Does WebRTC's noise suppression after AEC3 help Whisper? The interruption as the daemon hears
    it (the reply's echo until 0.6 s into the user's words, when barge-in stops it; the user at the
    echo's level), with only the rig's -60 dBFS hiss and with a fan-like -40 dBFS noise: WER of
    whisper-base on AEC3's output, without and with NS."""
    from faster_whisper import WhisperModel
    from pywebrtc_audio import AudioProcessor

    from Core.models import resolve

    model = WhisperModel(str(resolve("whisper-base", "whisper").path), device="cpu", compute_type="int8",
                         cpu_threads=2)
    rng = np.random.default_rng(0)
    lead = 3 * 16000
    far = far[np.sqrt(np.convolve(far ** 2, np.ones(160) / 160, "same")) > 1e-3]  # speech only, no pauses
    results: dict = {}
    for noise_name, noise_dbfs in (("hiss -60 dBFS", -60.0), ("noise -40 dBFS", -40.0)):
        for ns in (False, True):
            errors = []
            for clip in clips:
                n = lead + len(clip.samples) + 8000
                reference = np.zeros(n, np.float32)
                stop = lead + int(((first_loud(clip.samples, level=0.005) or 0.0) + 0.6) * 16000)
                reference[:stop] = np.resize(far, stop)
                echo = np.concatenate([np.zeros(1000, np.float32), reference])[:n] * 10 ** (echo_gain_db / 20)
                user = clip.samples * 10 ** ((active_dbfs(echo[:lead]) - active_dbfs(clip.samples)) / 20)
                mic = echo + rng.normal(0, 10 ** (noise_dbfs / 20), n).astype(np.float32)
                mic[lead:lead + len(user)] += user
                ap = AudioProcessor(16000, echo_cancellation=True, noise_suppression=ns)
                out = np.concatenate([ap.process(mic[i:i + 480], reference[i:i + 480])
                                      for i in range(0, n - 479, 480)])
                segments, _ = model.transcribe(out[lead - 4800:], language="en", beam_size=1)
                errors.append(wer(clip.text, " ".join(s.text for s in segments)))
            results[f"{noise_name}, NS {'on' if ns else 'off'}"] = round(float(np.mean(errors)), 3)
    return results


def _erle(mic: np.ndarray, cleaned: np.ndarray, speaker: np.ndarray) -> float:
    """Median per 30 ms frame where the speaker played, after the first 2 s (convergence)."""
    values = []
    for i in range(32000, len(mic) - 480, 480):
        far = speaker[i:i + 480]
        if active_dbfs(far) < -45 or float(np.mean(mic[i:i + 480] ** 2)) < 1e-9:
            continue
        values.append(10 * np.log10(np.mean(mic[i:i + 480] ** 2) / max(np.mean(cleaned[i:i + 480] ** 2), 1e-12)))
    return float(np.median(values)) if values else float("nan")


def _webrtc():
    from pywebrtc_audio import EchoCanceller

    aec = EchoCanceller(16000)
    return lambda near, far: aec.process(near, far)


def _speex(tail_ms: int):
    from speexdsp_aec import SpeexAec

    aec = SpeexAec(16000, 10, tail_ms)

    def run(near: np.ndarray, far: np.ndarray) -> np.ndarray:
        got = aec.process((near * 32767).astype(np.int16), (far * 32767).astype(np.int16))
        return np.frombuffer(got, np.int16).astype(np.float32) / 32767

    return run


def run(args: argparse.Namespace, folder: Path) -> dict:
    corpus = default_corpus()
    clips = [c for c in english_clips(corpus) if args.only is None or args.only in c.name]
    if not clips:
        raise SystemExit(f"bench echo: no clip's name contains {args.only!r}")
    question = corpus / "commands" / "turn_on_the_living_room_lamp.wav"
    audio = VirtualAudio(folder / "pulse")
    audio.start_noise_floor()
    path = EchoPath(audio, delay_ms=args.delay_ms, gain_db=args.echo_gain_db)
    report: dict = {"echo_path": {"added_delay_ms": args.delay_ms, "gain_db": args.echo_gain_db,
                                  "reverb": "sox reverb 50 50 60"}}
    try:
        sessions = []
        if args.control:
            control = Session("headset")
            for i in range(args.control):
                # a fresh daemon each time: one that answered its own voice has a history of nonsense
                rig = Rig(audio, "headset", folder)
                try:
                    fired = rig.solo_reply(question)
                finally:
                    rig.close()
                control.replies += 1
                control.self_barge_ins += fired
                print(f"headset solo reply {i + 1}: barge-in {'fired' if fired else 'no'}", flush=True)
            sessions.append(control)
        rig = Rig(audio, "aec", folder, args.set)
        try:
            for i in range(args.replies):
                print(f"aec solo reply {i + 1}: barge-in {'fired' if rig.solo_reply(question) else 'no'}", flush=True)
            echo = rig.session.echo_dbfs or -30.0
            clean: dict[tuple[str, float], str] = {}
            for i in range(args.interruptions):
                for ser in (0.0, -6.0):
                    clip = clips[i % len(clips)]
                    wav = at_level(clip, echo + ser, folder)
                    if (clip.name, ser) not in clean:
                        clean[(clip.name, ser)] = rig.clean_transcript(wav)
                    case = rig.interrupt(question, clip, wav, ser)
                    case.clean_wer = round(wer(clip.text, clean[(clip.name, ser)]), 3)
                    print(f"interruption {i + 1} at {ser:+.0f} dB ({clip.name}): barge-in "
                          f"{'fired' if case.barge_in else 'MISSED'}, stop {case.stop_s} s, WER {case.wer} "
                          f"(without echo {case.clean_wer}): {case.heard!r}", flush=True)
        finally:
            rig.close()
        sessions.append(rig.session)
        report["sessions"] = [asdict(s) | {"recordings": len(s.recordings)} for s in sessions]
        aec = sessions[-1]
        if aec.recordings:
            report["candidates_offline"] = offline_candidates(aec.recordings)
            far = np.concatenate([soundfile.read(s, dtype="float32")[0] for s, _ in aec.recordings])
            report["noise_suppression_wer"] = offline_noise_suppression(far, clips, args.echo_gain_db)
        report["summary"] = summarize(sessions)
    finally:
        path.close()
        audio.close()
    return report


def summarize(sessions: list[Session]) -> dict:
    out: dict = {}
    for s in sessions:
        entry: dict = {"solo_replies": s.replies, "barge_ins_on_own_voice": s.self_barge_ins,
                       "echo_dbfs_at_mic": s.echo_dbfs, "echo_delay_ms": s.delay_ms}
        if s.erle_db is not None:
            entry |= {"erle_db": s.erle_db, "words_erle_db": s.words_erle_db, "cpu_us_per_10ms": s.cpu_us_per_10ms}
        for ser in (0.0, -6.0):
            cases = [c for c in s.cases if c.ser_db == ser]
            if not cases:
                continue
            fired = [c for c in cases if c.barge_in]
            gaps = [c.wer - c.clean_wer for c in fired if c.wer is not None and c.clean_wer is not None]
            entry[f"ser_{ser:+.0f}dB"] = {
                "barge_ins": f"{len(fired)}/{len(cases)}",
                "missed_for_want_of_a_reply": sum(c.no_reply for c in cases),
                "stop_s": percentiles([c.stop_s for c in fired if c.stop_s is not None], 2),
                "wer_mean": round(float(np.mean([c.wer for c in fired])), 3) if fired else None,
                "wer_without_echo_mean": round(float(np.mean([c.clean_wer for c in cases])), 3),
                "wer_gap_max": round(max(gaps), 3) if gaps else None,
            }
        out[s.mode] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=20, help="aec: replies nobody talks over")
    parser.add_argument("--interruptions", type=int, default=20, help="interruptions at each of 0 and -6 dB")
    parser.add_argument("--control", type=int, default=5, help="headset-mode replies (the control); 0 = none")
    parser.add_argument("--delay-ms", type=float, default=40.0,
                        help="delay of the echo's direct path (PulseAudio's loopback adds about 25 ms)")
    parser.add_argument("--echo-gain-db", type=float, default=-6.0)
    parser.add_argument("--quick", action="store_true", help="4 replies, 3 interruptions per level, 2 control")
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--only", metavar="TEXT", help="interrupt only with the clips whose name contains TEXT")
    parser.add_argument("--keep", metavar="DIR", help="copy the recordings (speaker, mic, clips) into DIR")
    parser.add_argument("--config", help="ignored (the daemon reads Config/assistant.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to the aec daemon")
    args = parser.parse_args(argv)
    if args.quick:
        args.replies, args.interruptions, args.control = 4, 3, 2
    args.set = [x for kv in args.set for x in ("--set", kv)]
    for tool in ("pulseaudio", "sox"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            print(f"bench echo: needs {tool} (scripts/setup.sh installs it)", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory(prefix="luxa-echo-") as tmp:
        started = time.monotonic()
        try:
            report = run(args, Path(tmp))
        finally:
            if args.keep:
                shutil.copytree(tmp, args.keep, ignore=shutil.ignore_patterns("pulse"), dirs_exist_ok=True)
        report["seconds"] = round(time.monotonic() - started)
    print(json.dumps(report["summary"], indent=2))
    print("offline, same recordings: " + json.dumps(report.get("candidates_offline"), indent=2))
    print("WER of interruptions after AEC3, without / with noise suppression: "
          + json.dumps(report.get("noise_suppression_wer"), indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
