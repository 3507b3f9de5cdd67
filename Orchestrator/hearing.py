"""A short utterance that matched no command is heard once more, told what commands sound like.

whisper-base mishears short commands it has no context for ("Dim the kitchen light" as "Then the
kitchen light", "Speak softer" as "Speaks Offer"). Given the commands' words and the devices'
names as its prompt (`intents.stt_prompts`) it hears them right, but the same prompt on every
utterance made open speech worse (French FLEURS heard as English, English FLEURS WER 0.106 ->
0.135). So only a short utterance that matched nothing is decoded again with it, and the second
hearing is kept only if it is a command and close to the first (no prompt-made commands out of
unrelated speech). Everything that answers speech with commands uses this: the voice loop and the
satellites (and `bench commands`, which measures it).
"""
from __future__ import annotations

import difflib
import logging
from typing import TYPE_CHECKING

from Core import metrics
from Core.audio import Audio
from Orchestrator.intents.matcher import without_repeats
from STT.transcript import DecodeOptions, Transcript

if TYPE_CHECKING:
    from Orchestrator.assistant import Assistant

log = logging.getLogger(__name__)

MAX_WORDS = 8  # a command is short; longer speech is a question for the LLM
MAX_SECONDS = 5.0
MIN_LIKENESS = 0.5  # of the two hearings' letters: the prompt may fix or restore a word, not make a sentence up
HEARD_AGAIN = metrics.counter("luxa_stt_heard_again_total",
                              "short utterances matching no command, decoded again with the commands' prompt, by outcome",
                              ("outcome",))


def could_be_command(transcript: Transcript) -> bool:
    return bool(transcript.text) and len(transcript.text.split()) <= MAX_WORDS and transcript.duration_s <= MAX_SECONDS


def alike(first: str, second: str) -> float:
    """How much of the letters the two hearings share (a looping first hearing counted once)."""
    return difflib.SequenceMatcher(None, without_repeats(first).lower(), without_repeats(second).lower()).ratio()


async def hear(assistant: Assistant, audio: Audio, transcript: Transcript) -> Transcript:
    """`transcript`, or a second hearing of `audio` that is the command the user more likely said."""
    intents = getattr(assistant, "intents", None)  # a test's stand-in assistant may have none
    if intents is None or not could_be_command(transcript):
        return transcript
    if await intents.match_off_loop(transcript.text, transcript.language) is not None:
        return transcript
    prompt = intents.stt_prompt(transcript.language)
    if prompt is None:
        return transcript
    again = await assistant.stt.transcribe(audio, transcript.language, DecodeOptions(prompt=prompt))
    if again.text and alike(transcript.text, again.text) >= MIN_LIKENESS \
            and await intents.match_off_loop(again.text, again.language) is not None:
        log.info("heard again as a command: %r -> %r", transcript.text, again.text)
        HEARD_AGAIN.labels("command").inc()
        return again
    HEARD_AGAIN.labels("kept").inc()
    return transcript
