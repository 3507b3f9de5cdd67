"""The English command set spoken by Piper at three speeds and three levels (one combination per
line, in turn), heard the voice loop's way (the STT chain, then `hear`'s second hearing of a short
miss) and matched; scripts/bench_commands.py measures every line at every speed and level, and
the latency of the same clips through the voice loop.

Issue 20 asks for >= 95 %. With a 15 s encoder window the bench measured 98 % on 468 clips; what
is left is whisper-base mishearing Piper's "Speak softer" ("Speak software", "Speak"). A run here
has 52 clips and Piper's synthesis differs from run to run, so one unlucky clip costs 2 %: the
floor asserted is below the measured figure by that noise, so that a regression in the STT, the
second hearing or the matcher fails it."""
from __future__ import annotations

import pytest

from Config.loader import load_config
from Orchestrator.assistant import Assistant
from tests.fakes import CPU

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
ACCURACY_FLOOR = 0.9


async def test_spoken_commands_are_understood(tmp_path_factory):
    import bench_commands

    from Orchestrator.hearing import hear

    config = load_config(environ={}, overrides=bench_commands.overrides(str(tmp_path_factory.mktemp("state"))))
    assistant = Assistant(config, CPU)
    await assistant.start()
    try:
        rows = bench_commands.command_set("en")
        clips = await bench_commands.spoken(assistant.tts, rows)
        wrong = []
        for (_, text, intent, slots), clip in zip(rows, clips):
            transcript = await hear(assistant, clip, await assistant.stt.transcribe(clip))
            match = assistant.intents.match(transcript.text, transcript.language)
            if not bench_commands.agrees(match, intent, slots):
                wrong.append(f"{text!r} heard as {transcript.text!r}: {match and match.intent} (wanted {intent})")
    finally:
        await assistant.close()
    accuracy = 1 - len(wrong) / len(rows)
    print(f"\nintent accuracy from speech: {len(rows) - len(wrong)}/{len(rows)} ({accuracy:.1%})\n" + "\n".join(wrong))
    assert accuracy >= ACCURACY_FLOOR, wrong
