#!/usr/bin/env python3
"""Whole-turn benchmark: end of the user's speech -> first reply audio, its parts, and two baselines.

Two ways in, over the corpus commands and the English FLEURS clips:
- in-process: Orchestrator.commands.turn.one_turn (the VoiceLoop fed in real time from the file,
  early STT, streamed reply) on one Assistant loaded once; first audio = the first chunk handed
  to the sink. On the same endpointed utterances, right after each turn: the sequential
  pipeline and the raw-engine floor (scripts/bench_floor.py).
- virtual audio: `run_assistant.py` as a subprocess on a private PulseAudio server (the e2e
  harness); each clip is played into the virtual microphone while the speaker and the microphone
  are recorded, and the latency is read off the recordings, next to the daemon's logged timings.

The LLM runs at temperature 0 (greedy) so that LUXA and the baselines speak the same reply.

    python scripts/bench_turn.py [--quick] [--clips N] [--rounds N] [--no-virtual] [--json OUT] [--plot PNG]
"""
from __future__ import annotations

import argparse
import ast
import asyncio
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from Core import gpu

gpu.install_import_guard()

from bench_common import (
    add_config_args,
    default_corpus,
    describe_machine,
    failed,
    load_average,
    load_pinned,
    percentiles,
    report_header,
    write_json,
)

from Core.errors import AudioInputError, LuxaError

BENCH_OVERRIDES = ["llm.temperature=0"]
MARKS = ("endpoint", "stt", "llm_first_token", "llm_first_sentence", "tts_first_audio", "first_audio", "total")
TALK_OVER_SLACK_S = 0.05  # recordings are read in 10 ms windows: a reply that starts within 50 ms of the end is not a false end
# each part of the wait, as the difference of two marks (all marks count from the end of speech)
PARTS = {
    "endpoint wait": (None, "endpoint"),
    "STT (after endpoint)": ("endpoint", "stt"),
    "LLM first token": ("stt", "llm_first_token"),
    "LLM first sentence": ("stt", "llm_first_sentence"),
    "TTS first audio": ("llm_first_sentence", "tts_first_audio"),
    "playback start": ("tts_first_audio", "first_audio"),
}
DEFAULT_PLOT = ROOT / "docs" / "turn_latency.png"
CONFIGURED, LONG_REPLIES = "configured", "long replies"
# SmolLM2-135M ignores "answer in three sentences" and parrots a prompt that names LUXA; this
# one (also the e2e tests' long reply) reliably gives several sentences
LONG_REPLY_PROMPT = "You are a storyteller. Always answer with a long story of at least eight sentences."


@dataclass(frozen=True)
class Clip:
    path: Path
    language: str


def corpus_clips(corpus: Path, quick: bool, limit: int | None) -> list[Clip]:
    """Spoken commands first (the typical request), then English FLEURS (long read sentences)."""
    import soundfile

    if not corpus.is_dir():
        raise LuxaError(f"corpus not found: {corpus} (use --corpus or LUXA_CORPUS)")
    fleurs = sorted((corpus / "fleurs").glob("fleurs-en-*.ogg"))
    if quick:
        fleurs = sorted(fleurs, key=lambda p: soundfile.info(str(p)).duration)[:2]
    clips = [Clip(p, "fr" if "french" in p.stem else "en") for p in sorted((corpus / "commands").glob("*.wav"))]
    clips += [Clip(p, "en") for p in fleurs]
    clips = clips[:limit] if limit else clips
    if not clips:
        raise LuxaError(f"no clips under {corpus}/commands or {corpus}/fleurs")
    return clips


def count_sentences(text: str) -> int:
    from Core.sentences import SentenceChunker

    chunker = SentenceChunker(first_chunk_max_words=None)
    return len(chunker.feed(text) + chunker.flush())


async def utterances(config, audio) -> list:
    """Every `end` event the endpointer gives for the clip, fed as the voice loop feeds it."""
    from Orchestrator.audio_io import FileMicrophone
    from STT.vad import Endpointer

    mic = FileMicrophone(audio, config.audio.frame_ms, config.vad.longest_end_silence_ms + 300, realtime=False)
    endpointer = Endpointer(config.vad, 16000, config.audio.frame_ms)
    return [event async for frame in mic.frames(asyncio.Event()) for event in endpointer.process(frame)
            if event.kind == "end"]


@dataclass
class Prepared:
    clip: Clip
    audio: object | None  # Core.audio.Audio: what every path is given
    utterance: object | None  # the endpointed utterance the baselines transcribe
    note: str = ""


async def prepare(config, clip: Clip, level_dbfs: float) -> Prepared:
    """One question per input, at a speaking level a microphone's gain would give.

    Several FLEURS clips are recorded at -49 to -67 dBFS, where the endpointer hears only
    fragments or nothing; each clip is levelled to `level_dbfs` (RMS). FLEURS clips are read
    passages whose pauses can be longer than vad.end_silence_ms: played whole, each pause ends a
    turn and the next words barge in, so only the last utterance is answered. Every path is
    given that last utterance."""
    from Core.audio import STT_RATE, Audio, dbfs, load_audio

    loaded = load_audio(clip.path).to_rate(STT_RATE)
    gain = 10 ** ((level_dbfs - dbfs(loaded.samples)) / 20)
    audio = Audio(np.clip(loaded.samples * gain, -1.0, 1.0).astype(np.float32), STT_RATE)
    level = f"levelled from {dbfs(loaded.samples):.0f} dBFS"
    ends = await utterances(config, audio)
    if not ends:
        return Prepared(clip, None, None, f"the endpointer hears no speech in it ({level})")
    if len(ends) == 1:
        return Prepared(clip, audio, ends[0].audio, level)
    start = ends[-1].start_t
    cut = Audio(audio.samples[int(start * STT_RATE):], STT_RATE)
    again = await utterances(config, cut)
    if len(again) != 1:
        return Prepared(clip, None, None, f"its last utterance (from {start:.2f} s) is not one turn")
    return Prepared(clip, cut, again[0].audio, f"{level}; {len(ends)} utterances, the last from {start:.2f} s")


def prime_llm(assistant) -> None:
    """Only the system prompt in llama.cpp's prefix cache, as between two real turns (bench_llm)."""
    from bench_llm import prime

    from LLM.backends.gguf import GgufBackend

    for backend in assistant.llm.backends:
        if isinstance(backend, GgufBackend) and backend.loaded:
            prime(backend.loaded, assistant.config)


def conversation(assistant, system_prompt: str | None):
    """A fresh conversation; a pass may ask for longer answers through its own system prompt."""
    from LLM import Conversation

    if system_prompt is None:
        return assistant.llm.new_conversation()
    llm = assistant.config.llm
    return Conversation(system_prompt, llm.history_token_budget, assistant.llm.count_tokens)


async def luxa_turn(assistant, audio, name: str, system_prompt: str | None) -> dict:
    from Orchestrator.commands.turn import one_turn
    from Orchestrator.preempt import PREEMPTIONS

    assistant.llm.conversation = conversation(assistant, system_prompt)  # every clip starts a conversation
    if assistant.tts.cache is not None:
        assistant.tts.cache.clear()  # a real synthesis, not a replay of an earlier round
    await asyncio.to_thread(prime_llm, assistant)
    before = {k: PREEMPTIONS.labels(k)._value.get() for k in ("used", "wasted")}
    cpu = time.process_time()  # every thread of the process: what preemption costs shows here
    result, _ = await one_turn(assistant, audio, name=name)
    return {"transcript": result.transcript, "language": result.language, "reply": result.reply,
            "sentences": count_sentences(result.reply), "backends": result.backends,
            "timings_ms": result.timings_ms, "cpu_s": round(time.process_time() - cpu, 3),
            "preemptions": {k: PREEMPTIONS.labels(k)._value.get() - v for k, v in before.items()}}


def passes(clips: list[Prepared], quick: bool) -> list[tuple[str, str | None, list[Prepared]]]:
    """(name, system prompt, clips): the product as configured, then English clips asked for longer
    answers, because the configured prompt keeps most replies to one sentence and the
    sequential baseline only falls behind on replies of several sentences."""
    english = [c for c in clips if c.clip.language == "en"]
    return [(CONFIGURED, None, clips), (LONG_REPLIES, LONG_REPLY_PROMPT, english[:2] if quick else english)]


async def in_process(config, status, inputs: list[Prepared], rounds: int, quick: bool) -> dict:
    from bench_floor import RawEngines, sequential_turn

    from Orchestrator.assistant import Assistant

    assistant = Assistant(config, status)
    await assistant.start()
    try:
        raw = await asyncio.to_thread(RawEngines, config)
        await asyncio.to_thread(raw.warm_up)
        heard = [p for p in inputs if p.audio is not None]
        if not heard:
            raise LuxaError("bench_turn: the endpointer hears none of the clips")
        await sequential_turn(assistant, heard[0].utterance, assistant.llm.new_conversation())  # warm-up
        rows = [{"clip": p.clip.path.name, "pass": CONFIGURED, "round": 0, "error": p.note}
                for p in inputs if p.audio is None]
        for name, prompt, pass_inputs in passes(heard, quick):
            for round_index in range(rounds):
                for item in pass_inputs:
                    rows.append(await _one_clip(assistant, raw, item, name, prompt, round_index))
    finally:
        await assistant.close()
    return {"load_seconds": {k: round(v, 2) for k, v in assistant.load_seconds.items()}, "turns": rows}


async def _one_clip(assistant, raw, item: Prepared, name: str, prompt: str | None, round_index: int) -> dict:
    """LUXA, then the sequential pipeline, then the raw floor, one after the other."""
    from bench_floor import sequential_turn

    clip = item.clip.path.name
    try:
        luxa = await luxa_turn(assistant, item.audio, clip, prompt)
    except AudioInputError as err:  # heard offline, not in real time: counted, and said why
        return {"clip": clip, "pass": name, "round": round_index, "error": str(err)}
    await asyncio.to_thread(prime_llm, assistant)
    sequential = await sequential_turn(assistant, item.utterance, conversation(assistant, prompt))
    floor = await asyncio.to_thread(raw.run, item.utterance.samples, item.clip.language,
                                    prompt or assistant.config.llm.system_prompt)
    print(f"{clip:28s} {name:13s} LUXA {luxa['timings_ms'].get('first_audio', float('nan')):6.0f} ms"
          f"  sequential {sequential['first_audio_ms']:6.0f} ms  floor {floor.first_audio_ms:6.0f} ms"
          f"  ({luxa['sentences']} sentence(s))", file=sys.stderr)
    return {"clip": clip, "pass": name, "round": round_index, "input": item.note or "whole clip",
            "duration_s": round(item.audio.duration_s, 2), "luxa": luxa, "sequential": sequential,
            "floor": floor.as_dict()}


def through_virtual_audio(inputs: list[Prepared], daemon_args: list[str]) -> dict:
    """Each clip played into the virtual mic of one running daemon; latency read off recordings."""
    from audio_harness import AssistantProcess, VirtualAudio, have_pulseaudio

    from Core.audio import write_wav

    if not have_pulseaudio():
        return {"skipped": "PulseAudio tools missing (bash scripts/setup.sh --test)", "turns": []}
    # the audio server it stops may still be writing its state there: a leftover is not an error
    with tempfile.TemporaryDirectory(prefix="luxa-bench-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        audio = VirtualAudio(work / "pulse")
        audio.start_noise_floor()
        luxa = None
        try:
            started = time.monotonic()
            luxa = AssistantProcess(audio.env, *daemon_args)
            luxa.wait_for("LUXA is listening", timeout=300)
            listening_s = round(time.monotonic() - started, 2)
            time.sleep(1.0)  # let the microphone stream settle
            rows = [{"clip": p.clip.path.name, "error": p.note} for p in inputs if p.audio is None]
            for i, item in enumerate(p for p in inputs if p.audio is not None):
                wav = work / f"clip{i}.wav"
                write_wav(wav, item.audio)
                rows.append(_virtual_turn(audio, luxa, item.clip, wav, work / f"turn{i}"))
                print(f"{item.clip.path.name:34s} virtual audio: recorded {rows[-1].get('recorded_first_audio_ms')} "
                      f"ms, daemon {rows[-1].get('daemon_timings_ms', {}).get('first_audio')} ms", file=sys.stderr)
        finally:
            if luxa is not None:
                luxa.shut_down()
            audio.close()
    return {"start_to_listening_s": listening_s, "turns": rows}


def _virtual_turn(audio, luxa, clip: Clip, wav: Path, prefix: Path) -> dict:
    speaker = audio.record(prefix.with_name(prefix.name + "-speaker.wav"))
    mic = audio.record(prefix.with_name(prefix.name + "-mic.wav"), device="vmic_feed.monitor")
    time.sleep(0.5)
    audio.play_into_mic(wav).wait(timeout=60)
    row: dict = {"clip": clip.path.name}
    try:
        # a clip the endpointer does not hear never starts a turn: give up a few seconds after it ended
        luxa.wait_for(r"^\[thinking\]", timeout=8.0)
        reply = luxa.wait_for(r"^luxa: |nothing heard|ignored: ", timeout=90)
        if not reply.startswith("luxa: "):
            raise AssertionError(reply)
        timings = luxa.wait_for(r" timings \{", timeout=10)
        row["reply"] = reply.removeprefix("luxa: ").split("   [first audio")[0]
        row["daemon_timings_ms"] = ast.literal_eval(timings[timings.index("{"):])
    except AssertionError as err:  # no answer: counted, not fatal
        row["error"] = str(err)
    time.sleep(0.3)
    played, asked = speaker.stop(), mic.stop()
    row.update(read_recordings(asked, played, mic.started - speaker.started))
    return row


def read_recordings(asked: np.ndarray, played: np.ndarray, shift_s: float) -> dict:
    """From what went into the mic and what the speaker played (`shift_s`: the mic recording's start
    on the speaker recording's timeline): end of speech -> first reply sound, or, when the reply
    began while the user was still speaking (a false end), by how much it talked over them. That
    "latency" would read as zero or less: it is counted apart, never as a fast turn."""
    from audio_harness import first_loud, last_loud

    begin, end = first_loud(asked), last_loud(asked)
    if begin is None or end is None:
        return {}
    begin, end = begin + shift_s, end + shift_s
    first = first_loud(played, after_s=begin)
    if first is None:
        return {}
    if first < end - TALK_OVER_SLACK_S:
        return {"talked_over_user_ms": round((end - first) * 1000.0, 1)}
    return {"recorded_first_audio_ms": round((first - end) * 1000.0, 1)}


def _parts(timings: list[dict]) -> dict:
    out = {}
    for name, (since, until) in PARTS.items():
        values = [t[until] - (t[since] if since else 0.0) for t in timings if until in t and (not since or since in t)]
        out[name] = percentiles(values)
    return out


def _preemption(turns: list[dict]) -> dict:
    """Replies started in a pause: used (the turn ended) / started, and the CPU seconds per turn."""
    used = sum(t.get("preemptions", {}).get("used", 0) for t in turns)
    wasted = sum(t.get("preemptions", {}).get("wasted", 0) for t in turns)
    return {"used": used, "wasted": wasted, "hit_rate": round(used / (used + wasted), 2) if used + wasted else None,
            "cpu_s_per_turn": percentiles([t.get("cpu_s") for t in turns], 3)}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _ratios(luxa: list[float], baseline: list[float]) -> dict:
    mine, theirs = percentiles(luxa), percentiles(baseline)
    return {"p50": _ratio(mine["p50"], theirs["p50"]), "p95": _ratio(mine["p95"], theirs["p95"]), "n": mine["n"]}


def _first_audio(rows: list[dict]) -> tuple[list[float], list[float], list[float]]:
    """(LUXA, sequential, floor) first-audio times of the same turns, in ms."""
    return ([r["luxa"]["timings_ms"]["first_audio"] for r in rows], [r["sequential"]["first_audio_ms"] for r in rows],
            [r["floor"]["first_audio_ms"] for r in rows])


def answered(rows: list[dict], pass_name: str | None = None) -> list[dict]:
    return [r for r in rows if "luxa" in r and "first_audio" in r["luxa"]["timings_ms"]
            and pass_name in (None, r["pass"])]


def summarise(inproc: dict, virtual: dict) -> dict:
    """Headline figures from the configured pass; the 2+ sentence ratio from every pass."""
    configured = [r for r in inproc["turns"] if r["pass"] == CONFIGURED]
    rows = answered(inproc["turns"], CONFIGURED)
    luxa, sequential, floor = _first_audio(rows)
    long_rows = answered(inproc["turns"], LONG_REPLIES)
    multi = [r for r in answered(inproc["turns"]) if r["luxa"]["sentences"] >= 2]
    floor_parts = {k: percentiles([r["floor"][k] for r in rows]) for k in
                   ("end_silence_ms", "stt_ms", "llm_first_token_ms", "llm_first_sentence_ms", "tts_first_audio_ms")}
    vrows = [r for r in virtual.get("turns", []) if "daemon_timings_ms" in r]
    return {
        "turns": len(configured), "answered": len(rows),
        "not_answered": {r["clip"]: r["error"] for r in configured if "error" in r},
        "luxa_first_audio_ms": percentiles(luxa),
        "luxa_marks_ms": {m: percentiles([r["luxa"]["timings_ms"].get(m) for r in rows]) for m in MARKS},
        "luxa_parts_ms": _parts([r["luxa"]["timings_ms"] for r in rows]),
        "sequential_first_audio_ms": percentiles(sequential),
        "floor_first_audio_ms": percentiles(floor),
        "preemption": _preemption([r["luxa"] for r in rows]),
        "floor_parts_ms": floor_parts,
        "ratio_luxa_to_sequential": _ratios(luxa, sequential),
        "ratio_luxa_to_floor": _ratios(luxa, floor),
        "multi_sentence": {
            "turns": len(multi),
            "luxa_first_audio_ms": percentiles(_first_audio(multi)[0]),
            "sequential_first_audio_ms": percentiles(_first_audio(multi)[1]),
            "ratio_luxa_to_sequential": _ratios(*_first_audio(multi)[:2]),
        },
        "long_replies": {
            "turns": len(long_rows), "sentences": percentiles([r["luxa"]["sentences"] for r in long_rows]),
            "luxa_first_audio_ms": percentiles(_first_audio(long_rows)[0]),
            "sequential_first_audio_ms": percentiles(_first_audio(long_rows)[1]),
            "floor_first_audio_ms": percentiles(_first_audio(long_rows)[2]),
            "ratio_luxa_to_sequential": _ratios(*_first_audio(long_rows)[:2]),
        },
        "virtual": {
            "turns": len(virtual.get("turns", [])), "answered": len(vrows),
            "not_answered": {r["clip"]: r["error"] for r in virtual.get("turns", []) if "error" in r},
            "recorded_first_audio_ms": percentiles([r.get("recorded_first_audio_ms") for r in virtual.get("turns", [])]),
            "talked_over_user": sum("talked_over_user_ms" in r for r in virtual.get("turns", [])),
            "no_reply_heard": sum("recorded_first_audio_ms" not in r and "talked_over_user_ms" not in r
                                  for r in virtual.get("turns", [])),
            "daemon_first_audio_ms": percentiles([r["daemon_timings_ms"].get("first_audio") for r in vrows]),
            "daemon_parts_ms": _parts([r["daemon_timings_ms"] for r in vrows]),
        },
    }


def print_report(report: dict) -> None:
    s = report["summary"]
    print(describe_machine(report["machine"]))
    print("models: " + "; ".join(f"{k} {v}" for k, v in report["models"].items()))
    print(f"end of speech -> first reply audio (ms), {s['answered']}/{s['turns']} turns answered in-process, "
          f"{s['virtual']['answered']}/{s['virtual']['turns']} through virtual audio")
    print(f"{'':38s}{'p50':>8}{'p95':>8}")
    rows = [("LUXA in-process", s["luxa_first_audio_ms"]),
            ("LUXA virtual audio (recorded)", s["virtual"]["recorded_first_audio_ms"]),
            ("LUXA virtual audio (daemon log)", s["virtual"]["daemon_first_audio_ms"]),
            ("sequential baseline", s["sequential_first_audio_ms"]),
            ("raw floor", s["floor_first_audio_ms"])]
    rows += [(f"  part: {name}", p) for name, p in s["luxa_parts_ms"].items()]
    rows += [(f"  floor: {name}", p) for name, p in s["floor_parts_ms"].items()]
    for name, p in rows:
        print(f"{name:38s}{_fmt(p['p50']):>8}{_fmt(p['p95']):>8}")
    v = s["virtual"]
    if v["turns"]:
        print(f"through virtual audio: the reply began before the user had finished (a false end) in "
              f"{v['talked_over_user']} of {v['turns']} turns; no reply heard after the speech in {v['no_reply_heard']}"
              " (both left out of the recorded figures)")
    pre = s["preemption"]
    print(f"preemptive replies: {pre['used']} used, {pre['wasted']} wasted (hit rate {pre['hit_rate']}); "
          f"CPU per turn p50 {_fmt(pre['cpu_s_per_turn']['p50'], 2)} s, p95 {_fmt(pre['cpu_s_per_turn']['p95'], 2)} s")
    long = s["long_replies"]
    print(f"long replies ({long['turns']} turns, {_fmt(long['sentences']['p50'])} sentences at p50): LUXA "
          f"{_fmt(long['luxa_first_audio_ms']['p50'])}/{_fmt(long['luxa_first_audio_ms']['p95'])} ms, sequential "
          f"{_fmt(long['sequential_first_audio_ms']['p50'])}/{_fmt(long['sequential_first_audio_ms']['p95'])} ms"
          f" (p50/p95)")
    for label, r in (("LUXA / sequential", s["ratio_luxa_to_sequential"]),
                     ("LUXA / sequential, replies of 2+ sentences", s["multi_sentence"]["ratio_luxa_to_sequential"]),
                     ("LUXA / raw floor", s["ratio_luxa_to_floor"])):
        print(f"{label}: p50 x{_fmt(r['p50'], 2)}, p95 x{_fmt(r['p95'], 2)} (n={r['n']})")


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def plot(report: dict, path: Path) -> None:
    """Distribution per path (box: quartiles, whiskers: p5-p95) and the median parts of a turn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    turns = answered(report["in_process"]["turns"], CONFIGURED)
    series = {
        "raw floor": [r["floor"]["first_audio_ms"] for r in turns],
        "sequential": [r["sequential"]["first_audio_ms"] for r in turns],
        "LUXA, virtual audio\n(recorded)": [r["recorded_first_audio_ms"] for r in report["virtual"].get("turns", [])
                                             if r.get("recorded_first_audio_ms") is not None],
        "LUXA, in-process": [r["luxa"]["timings_ms"]["first_audio"] for r in turns],
    }
    series = {k: [v / 1000 for v in vs] for k, vs in series.items() if vs}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    try:
        left.boxplot(list(series.values()), orientation="horizontal", whis=(5, 95), showfliers=False)
    except TypeError:  # matplotlib < 3.10
        left.boxplot(list(series.values()), vert=False, whis=(5, 95), showfliers=False)
    for i, values in enumerate(series.values(), start=1):
        left.scatter(values, [i] * len(values), s=14, alpha=0.6, zorder=3)
    left.set_yticks(range(1, len(series) + 1), list(series.keys()))
    left.axvline(1.2, linestyle="--", color="grey", linewidth=1, label="target p50 1.2 s")
    left.axvline(2.0, linestyle=":", color="black", linewidth=1, label="target p95 2.0 s")
    left.legend(fontsize=7, loc="lower right")
    left.set_xlim(left=0)
    left.set_xlabel("end of speech -> first reply audio (s)")
    parts = report["summary"]["luxa_parts_ms"]
    names = [n for n in PARTS if n != "LLM first token"]
    start = 0.0
    for name in names:
        width = (parts[name]["p50"] or 0.0) / 1000
        right.barh(0, width, left=start, label=name)
        start += width
    floor = report["summary"]["floor_parts_ms"]
    start = 0.0
    for key, name in (("end_silence_ms", "end silence"), ("stt_ms", "STT"), ("llm_first_sentence_ms", "LLM 1st sentence"),
                      ("tts_first_audio_ms", "TTS 1st audio")):
        width = (floor[key]["p50"] or 0.0) / 1000
        right.barh(1, width, left=start, color="lightgrey", edgecolor="black", linewidth=0.5)
        right.text(start + width / 2, 1, name, ha="center", va="center", fontsize=6, rotation=90)
        start += width
    right.set_yticks([0, 1], ["LUXA parts\n(medians)", "raw floor\n(medians)"])
    right.set_xlabel("s after end of speech")
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    m = report["machine"]
    load = (f"load average {m['load_average'][0]} -> {m['load_average_end'][0]}"
            if m.get("load_average") and m.get("load_average_end") else "load n/a")
    fig.suptitle(f"LUXA turn latency, {len(turns)} turns - {m['cpu']}, {m['cores']} cores, {load} during the run",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


async def _prepare_all(config, clips: list[Clip], level_dbfs: float) -> list[Prepared]:
    return [await prepare(config, clip, level_dbfs) for clip in clips]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_args(parser, json_help="also write every figure and every turn to this file")
    parser.add_argument("--quick", action="store_true", help="the commands and the 2 shortest English FLEURS clips")
    parser.add_argument("--clips", type=int, default=None, help="only the first N clips")
    parser.add_argument("--rounds", type=int, default=1, help="in-process passes over the clips (default 1)")
    parser.add_argument("--no-virtual", action="store_true", help="skip the run through the virtual audio server")
    parser.add_argument("--plot", default=str(DEFAULT_PLOT), help="PNG to draw ('' for none)")
    parser.add_argument("--level-dbfs", type=float, default=-20.0,
                        help="speech level (RMS dBFS) every clip is levelled to, as a mic's gain would (default -20)")
    parser.add_argument("--corpus", default=str(default_corpus()))
    args = parser.parse_args(argv)

    try:
        if args.rounds < 1 or (args.clips is not None and args.clips < 1):
            raise LuxaError("bench_turn: --rounds and --clips must be at least 1")
        overrides = BENCH_OVERRIDES + args.overrides
        config, status = load_pinned(args.config, overrides)
        clips = corpus_clips(Path(args.corpus), args.quick, args.clips)
        report = report_header(config, overrides, device=status.device, clips=[c.path.name for c in clips], settings={
            "end_silence_ms": config.vad.end_silence_ms, "pause_ms": config.vad.pause_ms,
            "early_stt": config.vad.early_stt, "first_chunk_max_words": config.tts.first_chunk_max_words,
            "clip_level_dbfs": args.level_dbfs})
        inputs = asyncio.run(_prepare_all(config, clips, args.level_dbfs))
        report["inputs"] = {p.clip.path.name: p.note for p in inputs}
        report["in_process"] = asyncio.run(in_process(config, status, inputs, args.rounds, args.quick))
        daemon_args = ([f"--config={args.config}"] if args.config else []) + [a for o in overrides for a in ("--set", o)]
        report["virtual"] = {"skipped": "--no-virtual", "turns": []} if args.no_virtual else \
            through_virtual_audio(inputs, daemon_args)
    except (LuxaError, AssertionError, subprocess.TimeoutExpired) as err:  # the harness asserts on a dead daemon
        return failed("bench_turn", err)
    report["machine"]["load_average_end"] = load_average()
    report["summary"] = summarise(report["in_process"], report["virtual"])
    print_report(report)
    if args.plot:
        plot(report, Path(args.plot))
        report["plot"] = args.plot
        print(f"plot: {args.plot}")
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
