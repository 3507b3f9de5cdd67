#!/usr/bin/env python3
"""Benchmark the voice-clone backend: prompt creation, a sentence from a stored prompt, and the
same sentence with the reference processed every time (what stored prompts save).

Without real Qwen3-TTS weights (none are reachable here) it runs on the tiny random model the
tests build too (scripts/tiny_qwen.py): the figures then measure the plumbing and the
reference-processing share, not the speed of the real 0.6B/1.7B models. Give --model DIR to
time a real Base model folder.

    python scripts/bench_clone.py [--model DIR] [--runs N] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from Config import LuxaConfig  # noqa: E402
from Core import gpu  # noqa: E402

SENTENCE = "The weather tomorrow will be sunny in the morning."
REFERENCE = "fleurs/fleurs-en-001"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a Qwen3-TTS Base folder (default: tiny random model)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=12, help="codec frames per sentence (12.5 per second)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    gpu.pin(LuxaConfig().gpu.index)
    from bench_common import default_corpus, describe_machine, machine, percentiles
    from Core.audio import load_audio
    from Core.gpu import GpuStatus
    from TTS.clone_reference import load_reference
    from TTS.qwen_clone import QwenCloneBackend

    work = Path(tempfile.mkdtemp(prefix="luxa-bench-clone-"))
    folder = args.model
    if folder is None:
        from tiny_qwen import build_tiny_base_model  # scripts/ beside this file

        folder = build_tiny_base_model(work / "tiny")
    config = LuxaConfig.model_validate({"tts": {"clone": {
        "models": {"0.6B": str(folder)}, "prompt_store_dir": str(work / "voices"),
        "max_new_tokens": args.max_new_tokens, "similarity_check": False}}})
    backend = QwenCloneBackend(config, config.tts.backends["qwen_clone"], GpuStatus("cpu", 0, reason="bench"))
    ref_path = default_corpus() / f"{REFERENCE}.ogg"
    ref_text = ref_path.with_suffix(".txt").read_text().strip()
    reference = load_reference(ref_path, config.tts.clone)

    started = time.perf_counter()
    engine = backend.engine("0.6B")
    load_s = time.perf_counter() - started
    create, stored, direct = [], [], []
    prompt = None
    for _ in range(args.runs):
        t = time.perf_counter()
        prompt = backend.create_voice(ref_path, ref_text)
        create.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        backend.speak(prompt.id, SENTENCE, "en")
        stored.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        engine.model.generate_voice_clone(text=SENTENCE, language="english", ref_text=ref_text,
                                          ref_audio=(reference.samples, reference.sample_rate),
                                          max_new_tokens=args.max_new_tokens)
        direct.append((time.perf_counter() - t) * 1000)
    tiny = "tiny random Qwen3-TTS Base (scripts/tiny_qwen.py)"
    report = {"machine": machine(), "model": str(folder) if args.model else tiny,
              "reference_s": round(load_audio(ref_path).duration_s, 2), "max_new_tokens": args.max_new_tokens,
              "load_s": round(load_s, 2), "create_prompt_ms": percentiles(create),
              "sentence_stored_prompt_ms": percentiles(stored), "sentence_reference_each_time_ms": percentiles(direct)}
    print(describe_machine(report["machine"]))
    print(f"model: {report['model']}, loaded in {report['load_s']} s; reference {report['reference_s']} s")
    for key in ("create_prompt_ms", "sentence_stored_prompt_ms", "sentence_reference_each_time_ms"):
        p = report[key]
        print(f"{key:34s} p50 {p['p50']:8.1f}  p95 {p['p95']:8.1f}  (n={p['n']})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
