"""Wyoming servers side by side, on the same clips and texts: time to transcript, time to first audio.

    python scripts/bench_wyoming.py --stt luxa=tcp://127.0.0.1:10300 wfw=tcp://127.0.0.1:10301 \
        --tts luxa=tcp://127.0.0.1:10300 piper=tcp://127.0.0.1:10302 [--rounds 3] [--json F] [--write-corpus DIR]

STT: each English corpus clip (FLEURS en + the English commands) is sent as 16 kHz 16-bit mono
in 1024-sample chunks at once; the clock runs from writing audio-stop to reading `transcript`.
WER is computed on normalised text (lower case, no punctuation). TTS: each text as one
`synthesize` (run LUXA with --set cache.enabled=false, or its cache answers the repeats); first
audio = writing the request -> the first audio-chunk; RTF = time to audio-stop / seconds of
audio. Servers are measured in turn, round by round, so that background load hits them alike.
`--write-corpus DIR` writes the same clips as WAV + .txt for `wyoming-bench`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXTS = [
    "The kitchen light is on.",
    "It is twenty past seven, and the weather looks clear for the rest of the evening.",
    "I set a timer for ten minutes. I will tell you when it is done.",
]
CHUNK_SAMPLES = 1024


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


def clips(corpus: Path) -> list[tuple[str, bytes, str]]:
    from Core.audio import float32_to_pcm16, load_audio

    items = [(p, p.with_suffix(".txt").read_text(encoding="utf-8").strip())
             for p in sorted((corpus / "fleurs").glob("fleurs-en-*.ogg"))]
    for line in (corpus / "commands" / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            name, text = line.split("\t", 1)
            items.append((corpus / "commands" / name, text.strip()))
    return [(p.stem, float32_to_pcm16(load_audio(p).to_rate(16000).samples), ref) for p, ref in items]


async def transcribe(uri: str, pcm: bytes) -> tuple[float, str]:
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncClient

    async with AsyncClient.from_uri(uri, read_timeout=120) as c:
        await c.write_event(Transcribe(language="en").event())
        await c.write_event(AudioStart(16000, 2, 1).event())
        for i in range(0, len(pcm), CHUNK_SAMPLES * 2):
            await c.write_event(AudioChunk(16000, 2, 1, pcm[i:i + CHUNK_SAMPLES * 2]).event())
        start = time.perf_counter()
        await c.write_event(AudioStop().event())
        while (event := await c.read_event()) is not None:
            if event.type == "transcript":
                return time.perf_counter() - start, event.data.get("text", "")
            if event.type == "error":
                raise RuntimeError(event.data)
    raise RuntimeError("connection closed before the transcript")


async def synthesize(uri: str, text: str) -> tuple[float, float, float]:
    from wyoming.client import AsyncClient
    from wyoming.tts import Synthesize

    async with AsyncClient.from_uri(uri, read_timeout=120) as c:
        start = time.perf_counter()
        await c.write_event(Synthesize(text=text).event())
        first, audio_s = None, 0.0
        while (event := await c.read_event()) is not None:
            if event.type == "audio-chunk":
                first = first or time.perf_counter() - start
                d = event.data
                audio_s += len(event.payload or b"") / (d["rate"] * d["width"] * d["channels"])
            elif event.type == "audio-stop":
                return first, time.perf_counter() - start, audio_s
            elif event.type == "error":
                raise RuntimeError(event.data)
    raise RuntimeError("connection closed before audio-stop")


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def bench(args) -> dict:
    import jiwer

    out: dict = {"stt": {}, "tts": {}}
    data = clips(Path(args.corpus))
    stt = dict(s.split("=", 1) for s in args.stt)
    tts = dict(s.split("=", 1) for s in args.tts)
    for name, uri in stt.items():  # warm-up, untimed
        await transcribe(uri, data[0][1])
    for name, uri in tts.items():
        await synthesize(uri, "Warming up.")
    lat: dict[str, list[float]] = {n: [] for n in stt}
    hyp: dict[str, list[str]] = {n: [] for n in stt}
    for r in range(args.rounds):
        for stem, pcm, ref in data:
            for name, uri in stt.items():
                seconds, text = await transcribe(uri, pcm)
                lat[name].append(seconds)
                if r == 0:
                    hyp[name].append(normalise(text) or "<empty>")
    refs = [normalise(ref) for _, _, ref in data]
    for name in stt:
        out["stt"][name] = {"p50_ms": 1000 * statistics.median(lat[name]), "p95_ms": 1000 * p(lat[name], 0.95),
                            "wer": jiwer.wer(refs, hyp[name]), "n": len(lat[name])}
    first: dict[str, list[float]] = {n: [] for n in tts}
    rtf: dict[str, list[float]] = {n: [] for n in tts}
    for r in range(args.rounds):
        for i, text in enumerate(TEXTS):
            for name, uri in tts.items():
                f, total, audio_s = await synthesize(uri, text)  # run LUXA with cache.enabled=false: cold synthesis
                first[name].append(f)
                rtf[name].append(total / audio_s)
    for name in tts:
        out["tts"][name] = {"first_audio_p50_ms": 1000 * statistics.median(first[name]),
                            "first_audio_p95_ms": 1000 * p(first[name], 0.95),
                            "rtf_p50": statistics.median(rtf[name]), "n": len(first[name])}
    return out


def write_corpus(corpus: Path, target: Path) -> None:
    import numpy as np
    import soundfile

    target.mkdir(parents=True, exist_ok=True)
    for stem, pcm, ref in clips(corpus):
        soundfile.write(target / f"{stem}.wav", np.frombuffer(pcm, np.int16), 16000, subtype="PCM_16")
        (target / f"{stem}.txt").write_text(ref + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stt", nargs="*", default=[], metavar="NAME=URI")
    parser.add_argument("--tts", nargs="*", default=[], metavar="NAME=URI")
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--write-corpus", metavar="DIR", help="write the clips as WAV + .txt and exit")
    args = parser.parse_args(argv)
    if args.write_corpus:
        write_corpus(Path(args.corpus), Path(args.write_corpus))
        return 0
    result = asyncio.run(bench(args))
    for name, r in result["stt"].items():
        print(f"stt {name:8s} transcript after audio-stop p50 {r['p50_ms']:6.0f} ms  p95 {r['p95_ms']:6.0f} ms  "
              f"WER {r['wer']:.3f}  (n={r['n']})")
    for name, r in result["tts"].items():
        print(f"tts {name:8s} first audio p50 {r['first_audio_p50_ms']:6.0f} ms  p95 {r['first_audio_p95_ms']:6.0f} ms  "
              f"RTF p50 {r['rtf_p50']:.3f}  (n={r['n']})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
