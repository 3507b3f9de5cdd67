#!/usr/bin/env python3
"""End of turn: false ends and end wait, fixed silence against the turn model, on the same utterances.

The set: the corpus commands and FLEURS clips as recorded (some already pause mid-sentence), and
the same clips with a 300-900 ms pause (the clip's own room tone) inserted at word boundaries (Whisper word timestamps
through LUXA's STT, cached under build/cache/turn_end/; boundaries and pause lengths drawn from a
seeded generator, so every run hears the same set). Each utterance goes through the real
Endpointer frame by frame, 30 ms frames, levelled to -20 dBFS RMS over a -60 dBFS noise floor
(bench turn's level, the e2e rig's floor). The turn model runs twice: "paced", where frames
come at real-time pace while a verdict is pending, so its inference time counts as it would live
on this machine's load (and the figures move with that load); and "instant verdicts", where each
verdict is in before the next frame: the model's decisions alone, the same on every run.

- false end: the first `end` comes before the speaker's last word has ended (the rest of the
  sentence would have become a second question);
- end wait: first `end` minus the end of speech (Whisper's last word, placed exactly on the
  level: the last 10 ms clearly above the clip's noise floor), on utterances without a false end.

    python scripts/bench_turn_end.py [--quick] [--json OUT] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_common import default_corpus, describe_machine, load_average, machine, percentiles  # noqa: E402

from Core.audio import STT_RATE, dbfs  # noqa: E402
from Core.errors import LuxaError  # noqa: E402

CACHE = ROOT / "build" / "cache" / "turn_end"
SEED = 18
PAUSE_MS = (300, 900)
VARIANTS_PER_CLIP = 6  # pause insertions per clip (fewer when the clip has fewer word boundaries)
LEAD_S, TAIL_S = 0.5, 2.0
NOISE_DBFS = -60.0
LEVEL_DBFS = -20.0  # RMS a microphone's gain would give (bench turn's): some FLEURS clips sit at -49 to -67 dBFS
END_WINDOW_S, END_RANGE_DB, FLOOR_MARGIN_DB, WORD_END_SLACK_S = 0.01, 40.0, 12.0, 0.3


@dataclass(frozen=True)
class Utterance:
    name: str
    samples: np.ndarray  # 16 kHz, lead-in and tail silence and noise floor included
    speech_end_s: float  # where the speaker stops, in stream time
    pauses: int  # pauses inserted


def speech_end(samples: np.ndarray, last_word_end: float) -> float:
    """End of the last 10 ms window clearly above the clip's own noise floor (FLOOR_MARGIN_DB over its
    10th percentile) up to just after Whisper's last word: Whisper's word ends are only roughly placed,
    and some recordings carry background noise to their last sample."""
    n = int(END_WINDOW_S * STT_RATE)
    windows = samples[: len(samples) // n * n].reshape(-1, n)
    level = 20 * np.log10(np.sqrt((windows.astype(np.float64) ** 2).mean(axis=1)) + 1e-12)
    threshold = max(np.percentile(level, 10) + FLOOR_MARGIN_DB, level.max() - END_RANGE_DB)
    loud = np.nonzero(level[: int((last_word_end + WORD_END_SLACK_S) / END_WINDOW_S)] > threshold)[0]
    return float((loud[-1] + 1) * END_WINDOW_S) if loud.size else last_word_end


def clips(corpus: Path, quick: bool) -> list[Path]:
    paths = sorted((corpus / "commands").glob("*.wav")) + sorted((corpus / "fleurs").glob("fleurs-*.ogg"))
    if not paths:
        raise LuxaError(f"no clips under {corpus}/commands or {corpus}/fleurs (use --corpus or LUXA_CORPUS)")
    return [p for p in paths if "fleurs-fr" not in p.name][:5] if quick else paths


async def word_times(config, paths: list[Path]) -> dict[str, list[tuple[float, float]]]:
    """(start, end) of each word per clip, from LUXA's STT with word timestamps; cached by file digest."""
    from Core.audio import load_audio

    CACHE.mkdir(parents=True, exist_ok=True)
    cache_file = CACHE / "words.json"
    cached = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    keys = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in paths}
    missing = [p for p in paths if keys[p.name] not in cached]
    if missing:
        from Core.gpu import GpuStatus
        from STT import RobustSTTManager
        from STT.transcript import DecodeOptions

        print(f"word timestamps for {len(missing)} clips (once; cached in {cache_file})", file=sys.stderr)
        manager = RobustSTTManager(config, GpuStatus("cpu", 1))
        await manager.start()
        try:
            for path in missing:
                result = await manager.transcribe(load_audio(path), None, DecodeOptions(word_timestamps=True))
                cached[keys[path.name]] = [(w.start, w.end) for s in result.segments for w in s.words]
        finally:
            await manager.close()
        cache_file.write_text(json.dumps(cached))
    return {p.name: [tuple(w) for w in cached[keys[p.name]]] for p in paths}


def build_set(paths: list[Path], words: dict[str, list[tuple[float, float]]]) -> list[Utterance]:
    """Each clip as recorded, then with a pause at up to VARIANTS_PER_CLIP word boundaries (seeded)."""
    from Core.audio import load_audio

    rng = np.random.default_rng(SEED)
    out = []
    for path in paths:
        clean = load_audio(path).to_rate(STT_RATE).samples.astype(np.float32)
        clean = np.clip(clean * 10 ** ((LEVEL_DBFS - dbfs(clean)) / 20), -1.0, 1.0).astype(np.float32)
        spans = words[path.name]
        if not spans:
            raise LuxaError(f"STT heard no words in {path.name}")
        end = speech_end(clean, spans[-1][1])
        out.append(_utterance(path.stem, clean, end, rng))
        # cut midway between two words; not before the first nor after the last word
        cuts = [int((a[1] + b[0]) / 2 * STT_RATE) for a, b in zip(spans, spans[1:], strict=False)]
        chosen = sorted(rng.choice(len(cuts), min(VARIANTS_PER_CLIP, len(cuts)), replace=False)) if cuts else []
        tone = room_tone(clean)
        for i in chosen:
            pause = fill(tone, int(rng.uniform(*PAUSE_MS) / 1000 * STT_RATE), rng)
            cut = cuts[i]
            samples = np.concatenate([clean[:cut], pause, clean[cut:]])
            out.append(_utterance(f"{path.stem}+{len(pause) * 1000 // STT_RATE}ms@word{i + 1}", samples,
                                  end + len(pause) / STT_RATE, rng, 1))
    return out


def room_tone(clean: np.ndarray) -> np.ndarray:
    """The clip's own background: its quietest fifth, 10 ms at a time. A pause filled with digital
    silence would be heard as the recording stopping, not as a speaker who pauses."""
    n = int(END_WINDOW_S * STT_RATE)
    windows = clean[: len(clean) // n * n].reshape(-1, n)
    level = (windows.astype(np.float64) ** 2).mean(axis=1)
    return windows[level <= np.percentile(level, 20)]


def fill(tone: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """`length` samples of room tone, its windows in a seeded random order."""
    count = -(-length // tone.shape[1])
    return tone[rng.integers(0, len(tone), count)].reshape(-1)[:length].astype(np.float32)


def _utterance(name: str, clean: np.ndarray, end_s: float, rng: np.random.Generator, pauses: int = 0) -> Utterance:
    tone = room_tone(clean)
    lead, tail = fill(tone, int(LEAD_S * STT_RATE), rng), fill(tone, int(TAIL_S * STT_RATE), rng)
    samples = np.concatenate([lead, clean, tail])
    noise = rng.standard_normal(len(samples)).astype(np.float32) * np.float32(10 ** (NOISE_DBFS / 20))
    return Utterance(name, samples + noise, LEAD_S + end_s, pauses)


class EarlyWords:
    """The voice loop's early STT, offline: the product's STT chain on each pause's utterance, its
    transcript read by the endpointer (Endpointer.words_heard) as many frames later as STT took."""

    def __init__(self, config) -> None:
        from Core.gpu import GpuStatus
        from STT import RobustSTTManager

        self.loop = asyncio.new_event_loop()
        self.stt = RobustSTTManager(config, GpuStatus("cpu", 1))
        self.loop.run_until_complete(self.stt.start())
        self.flagged = {"mid-sentence": [0, 0], "end": [0, 0]}  # [flagged unfinished, pauses]

    def hear(self, samples: np.ndarray) -> tuple[bool, float]:
        """(stops mid-phrase, seconds STT took) for the utterance up to a pause."""
        from Core.audio import Audio
        from Core.errors import AudioInputError
        from STT.unfinished import sounds_unfinished

        started = time.perf_counter()
        try:
            heard = self.loop.run_until_complete(self.stt.transcribe(Audio(samples, STT_RATE)))
        except AudioInputError:
            return False, time.perf_counter() - started
        return sounds_unfinished(heard.text, heard.language), time.perf_counter() - started

    def close(self) -> None:
        self.loop.run_until_complete(self.stt.close())
        self.loop.close()


def run_endpointer(vad_config, utterance: Utterance, verdict_wait_s: float, frame_ms: int = 30,
                   words: EarlyWords | None = None) -> dict:
    """The first `end` of the real Endpointer on this utterance. While a verdict is pending the next
    frame waits up to `verdict_wait_s`: one frame's time is real-time pace (the inference time counts
    as it would live, on this machine's load); a long wait gives every verdict before the next frame
    (the model's decisions alone, as on a machine where inference takes under a frame)."""
    from STT.vad import Endpointer

    endpointer = Endpointer(vad_config, STT_RATE, frame_ms, wait_for_words=words is not None)
    frame_len = STT_RATE * frame_ms // 1000
    ends = []
    hint: tuple[int, bool] | None = None  # (frame at which early STT's words arrive, they stop mid-phrase)
    for n, i in enumerate(range(0, len(utterance.samples) - frame_len + 1, frame_len)):
        if endpointer.judging:
            endpointer.wait_judgement(verdict_wait_s)
        if hint is not None and n >= hint[0]:
            endpointer.words_heard(hint[1])
            hint = None
        for event in endpointer.process(utterance.samples[i:i + frame_len]):
            if event.kind == "end":
                ends.append((event.t, endpointer.last_turn_probability))
            elif event.kind == "resume":
                hint = None
            elif event.kind == "pause" and words is not None and event.audio is not None:
                unfinished, took_s = words.hear(event.audio.samples)
                mid = event.t < utterance.speech_end_s
                words.flagged["mid-sentence" if mid else "end"][0] += unfinished
                words.flagged["mid-sentence" if mid else "end"][1] += 1
                hint = (n + 1 + math.ceil(took_s / (frame_ms / 1000)), unfinished)
    if not ends:
        return {"name": utterance.name, "ends": 0, "false_end": False, "end_wait_ms": None}
    first_t, p = ends[0]
    false_end = first_t < utterance.speech_end_s
    return {"name": utterance.name, "ends": len(ends), "false_end": false_end, "turn_probability": p,
            "end_wait_ms": None if false_end else round((first_t - utterance.speech_end_s) * 1000, 1)}


def bench(vad_config, utterances: list[Utterance], verdict_wait_s: float = 0.03, words: EarlyWords | None = None) -> dict:
    rows = [run_endpointer(vad_config, u, verdict_wait_s, words=words) for u in utterances]
    inserted = [r for r, u in zip(rows, utterances, strict=True) if u.pauses]
    return {
        "false_ends": sum(r["false_end"] for r in rows), "utterances": len(rows),
        "false_end_rate": round(sum(r["false_end"] for r in rows) / len(rows), 4),
        "false_ends_inserted": sum(r["false_end"] for r in inserted), "inserted": len(inserted),
        "no_end": sum(r["ends"] == 0 for r in rows),
        "end_wait_ms": percentiles([r["end_wait_ms"] for r in rows]),
        "end_wait_ms_as_recorded": percentiles([r["end_wait_ms"] for r, u in zip(rows, utterances, strict=True)
                                                if not u.pauses]),
        "rows": rows,
    }


def inference_ms(utterances: list[Utterance], runs: int = 10) -> dict:
    """The model alone, one call at a time on this thread (what the judge's thread spends)."""
    from STT.turn_model import TurnJudge

    judge = TurnJudge.load("smart-turn-v3.2")
    judge.probability(utterances[0].samples)  # first call allocates
    judge.timings_ms.clear()
    for u in (utterances * runs)[:runs]:
        judge.probability(u.samples)
    return percentiles(judge.timings_ms)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="OUT", help="also write every figure to this JSON file")
    parser.add_argument("--corpus", default=str(default_corpus()))
    parser.add_argument("--quick", action="store_true", help="the English commands and 2 FLEURS clips only")
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    from Config import load_config

    try:
        # the model is compared with the fixed silence even where the config leaves it off (the default)
        config = load_config(args.config, ["vad.turn_model=smart-turn-v3.2", *args.overrides])
        if not config.vad.turn_model:
            raise LuxaError("vad.turn_model is off: nothing to compare the fixed silence with")
        paths = clips(Path(args.corpus), args.quick)
        load_before = load_average()
        utterances = build_set(paths, asyncio.run(word_times(config, paths)))
        fixed_vad = config.vad.model_copy(update={"turn_model": None})
        started = time.perf_counter()
        words = EarlyWords(config)
        try:
            report = {"machine": machine(), "settings": config.vad.model_dump(), "seed": SEED,
                      "fixed": bench(fixed_vad, utterances), "model": bench(config.vad, utterances),
                      "model_instant": bench(config.vad, utterances, verdict_wait_s=30.0),
                      "model_words": bench(config.vad, utterances, words=words),
                      "inference_ms": inference_ms(utterances)}
            report["words_flagged"] = words.flagged
        finally:
            words.close()
        report["seconds"] = round(time.perf_counter() - started, 1)
        report["machine"]["load_average_end"] = load_average()
        report["machine"]["load_average"] = load_before
    except LuxaError as err:
        print(f"bench_turn_end: error: {err}", file=sys.stderr)
        return 1
    print_report(report, config.vad)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def print_report(report: dict, vad) -> None:
    print(describe_machine(report["machine"]))
    fixed, model = report["fixed"], report["model"]
    print(f"{model['utterances']} utterances ({model['inserted']} with an inserted pause), seed {report['seed']}")
    print("turn model: sure threshold (ends at once) / unsure threshold (ends after the unsure silence, "
          "below: after the maximum) / unsure silence")
    print("end wait: all utterances without a false end / the clips as recorded (complete sentences)")
    print(f"{'endpointer':46s} {'false ends':>14s} {'no end':>7s} {'end wait p50':>13s} {'p95':>7s} "
          f"{'as recorded p50':>16s} {'p95':>7s}")
    name = f"{vad.turn_model} {vad.turn_sure_threshold}/{vad.turn_threshold}/{vad.turn_unsure_silence_ms} ms"
    for label, r in ((f"fixed silence {vad.end_silence_ms} ms", fixed), (name + ", paced", model),
                     (name + ", instant verdicts", report["model_instant"]),
                     (name + ", paced + early words", report["model_words"])):
        w, c = r["end_wait_ms"], r["end_wait_ms_as_recorded"]
        print(f"{label:46s} {r['false_ends']:>4d} ({100 * r['false_end_rate']:4.1f}%) {r['no_end']:>7d} "
              f"{w['p50']:>10} ms {w['p95']:>4} ms {c['p50']:>13} ms {c['p95']:>4} ms")
    for label, r in (("fixed", fixed), ("model, paced", model), ("model + words", report["model_words"])):
        wrong = [row["name"] for row in r["rows"] if row["false_end"]]
        if wrong:
            print(f"false ends, {label}: {', '.join(wrong)}")
    f = report["words_flagged"]
    print(f"early words said 'stops mid-phrase' at {f['mid-sentence'][0]} of {f['mid-sentence'][1]} mid-sentence pauses "
          f"and at {f['end'][0]} of {f['end'][1]} pauses after the last word")
    i = report["inference_ms"]
    print(f"turn model inference (features + ONNX, 1 thread): p50 {i['p50']} ms, p95 {i['p95']} ms")


if __name__ == "__main__":
    sys.exit(main())
