#!/usr/bin/env python3
"""Answer quality with the default models: 40 everyday questions, then a 20-turn session.

Every question goes through the product's one answer path (Replier: commands, then the LLM), in
this process. Each reply is checked for the failures users met (issue 20): the system prompt
recited, a time or date invented, an answer in another language than the question, a reply that
repeats an earlier one given to a different question (session), more than two sentences, and an
empty or unusable reply. The checks here are plain text rules of their own, not the product's.

    python scripts/bench_answers.py [--json OUT] [--set KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import difflib
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_common import add_config_args, failed, load_pinned, percentiles, report_header, write_json  # noqa: E402

from Core.errors import LuxaError  # noqa: E402

# (language, question): what people ask a voice assistant most, and open questions
QUESTIONS = [
    ("en", "What time is it?"), ("en", "What's the date today?"), ("en", "What day is it today?"),
    ("en", "What year is it?"), ("en", "Turn on the living room light."), ("en", "Set a timer for ten minutes."),
    ("en", "How much time is left on my timer?"), ("en", "Cancel the timer."), ("en", "Turn the volume up."),
    ("en", "What's the weather like?"), ("en", "What is the capital of France?"), ("en", "How many legs does a spider have?"),
    ("en", "Give me a tip for sleeping better."), ("en", "What is the boiling point of water?"), ("en", "Tell me a short joke."),
    ("en", "Why is the sky blue?"), ("en", "What should I cook tonight?"), ("en", "Name three planets."),
    ("en", "How do I say hello in Spanish?"), ("en", "Who wrote Romeo and Juliet?"), ("en", "How far is the moon?"),
    ("en", "What is two plus two?"), ("en", "Who are you?"), ("en", "What can you do?"),
    ("en", "Recommend a good book."), ("en", "How do I boil an egg?"), ("en", "What is photosynthesis?"),
    ("en", "Is it going to rain tomorrow?"), ("en", "Tell me something interesting."), ("en", "Thank you."),
    ("fr", "Quelle heure est-il ?"), ("fr", "Quelle est la date aujourd'hui ?"), ("fr", "Quelle est la capitale de l'Italie ?"),
    ("fr", "Raconte-moi une blague."), ("fr", "Comment vas-tu ?"), ("fr", "Que faire ce week-end ?"),
    ("fr", "Combien de pattes a une araignée ?"), ("fr", "Pourquoi le ciel est-il bleu ?"),
    ("fr", "Allume la lumière de la cuisine."), ("fr", "Merci beaucoup."),
]
# one conversation: questions that build on each other, and the commands that broke it before
SESSION = [
    "Hello!", "What is the capital of Spain?", "And what language do they speak there?", "Tell me a fun fact.",
    "What time is it?", "Turn on the living room lamp.", "What is the largest ocean?", "How deep is it?",
    "Give me a tip for staying focused.", "What's the date today?", "Name a famous painter.",
    "What did he paint?", "Turn on the living room lamp.", "What is the speed of light?", "Tell me a joke.",
    "What should I eat for breakfast?", "How many days are in a leap year?", "What is the tallest mountain?",
    "Set a timer for five minutes.", "Thank you, goodbye.",
]

FRENCH_WORDS = {"le", "la", "les", "est", "et", "un", "une", "des", "je", "vous", "tu", "il", "de", "du", "que", "pour",
                "pas", "c'est", "en", "sur", "avec", "ce", "qui", "à", "au", "bonjour", "merci", "oui", "non"}
ENGLISH_WORDS = {"the", "is", "and", "a", "an", "of", "to", "you", "i", "it", "in", "that", "for", "are", "with",
                 "this", "what", "can", "be", "on", "your", "my", "hello", "thank", "yes", "no"}
CLOCK = re.compile(r"\b\d{1,2}[:h]\d{2}\b|\b\d{1,2}\s?(a\.?m\.?|p\.?m\.?)\b|o'clock", re.I)
WEEKDAYS = {"en": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
            "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]}
MONTHS = {"en": ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
                 "november", "december"],
          "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
                 "novembre", "décembre"]}


def words(text: str) -> list[str]:
    return re.findall(r"[\w'’]+", text.lower())


def language_of(text: str) -> str | None:
    w = words(text)
    fr, en = sum(x in FRENCH_WORDS for x in w), sum(x in ENGLISH_WORDS for x in w)
    return None if fr == en else ("fr" if fr > en else "en")


def recites(reply: str, system_prompt: str, n: int = 4) -> bool:
    """Four words in a row from the system prompt's instructions."""
    prompt = " ".join(words(system_prompt))
    w = words(reply)
    return any(" ".join(w[i:i + n]) in prompt for i in range(len(w) - n + 1))


# words that make a year in the reply a claim about the present ("what year is it", "this year"),
# not a fact about another one ("built in 1889", "2024 was a leap year")
PRESENT_YEAR = re.compile(r"\b(this year|current year|year is it|cette année|année sommes|année est-on|today|aujourd)")


def invents_time(reply: str, now: dt.datetime, question: str = "") -> bool:
    """A clock time not within 2 minutes of now, a year that is not this one said as the present
    one, or a weekday or month that is not today's said about today."""
    low = reply.lower()
    if PRESENT_YEAR.search(question.lower() + " " + low) and any(
            int(y) != now.year for y in re.findall(r"\b(19\d\d|20\d\d)\b", low)):
        return True
    for m in re.finditer(r"\b(\d{1,2})[:h](\d{2})\b", low):
        said = int(m.group(1)) * 60 + int(m.group(2))
        if min(abs(said - (now.hour * 60 + now.minute)) % 720, 720 - abs(said - (now.hour * 60 + now.minute)) % 720) > 2:
            return True
    if not re.search(r"\b\d{1,2}[:h]\d{2}\b", low) and CLOCK.search(low):
        return True
    if not re.search(r"\b(today|date|day is|it is|it's|aujourd|nous sommes|on est)\b", low):
        return False  # "Venus, Earth and Mars" names no month
    for lang in ("en", "fr"):
        today_day, today_month = WEEKDAYS[lang][now.weekday()], MONTHS[lang][now.month - 1]
        if any(re.search(rf"\b{d}\b", low) for d in WEEKDAYS[lang] if d != today_day):
            return True
        if any(re.search(rf"\b{m}\b", low) for m in MONTHS[lang] if m != today_month and m != "may"):
            return True
    return False


def sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if re.search(r"\w", s)])


def check(reply: str, language: str, system_prompt: str, now: dt.datetime, question: str = "") -> dict[str, bool]:
    said = language_of(reply)
    return {
        "recital": recites(reply, system_prompt),
        "invented_time": invents_time(reply, now, question),
        "wrong_language": said is not None and said != language,
        "over_two_sentences": sentences(reply) > 2,
        "empty": not re.search(r"\w", reply),
    }


async def ask(replier, conversation, question: str, language: str) -> dict:
    started = time.perf_counter()
    answer = replier.stream(question, conversation, language)
    first = None
    async for _ in answer:
        first = first or time.perf_counter() - started
    result = answer.result
    return {"question": question, "language": language, "reply": result.reply, "backend": result.backend,
            "intent": result.intent, "first_ms": None if first is None else round(first * 1000, 1),
            "total_ms": round((time.perf_counter() - started) * 1000, 1)}


async def run(config, status) -> dict:
    from LLM import EnhancedLLMManager
    from Orchestrator.intents import Intents
    from Orchestrator.intents.phrasing import now
    from Orchestrator.reply import Replier

    llm = EnhancedLLMManager(config, status)
    intents = Intents(config) if config.intents.enabled else None
    await asyncio.gather(llm.start(), *([intents.start()] if intents else []))
    replier = Replier(llm, intents)
    prompt = config.llm.system_prompt + " ".join(config.llm.system_prompts.values())
    try:
        singles = []
        for language, question in QUESTIONS:  # each in a fresh conversation: no history to blame
            row = await ask(replier, llm.new_conversation(), question, language)
            row.update(check(row["reply"], language, prompt, now(config.intents.time_zone), question))
            row["recital"] = row["recital"] and row["backend"] != "intent"  # a command's own words are no recital
            singles.append(row)
            print(f"{row['backend']:8s} {question!r} -> {row['reply']!r}", file=sys.stderr, flush=True)
        conversation, session = llm.new_conversation(), []
        for question in SESSION:
            row = await ask(replier, conversation, question, "en")
            row.update(check(row["reply"], "en", prompt, now(config.intents.time_zone), question))
            row["recital"] = row["recital"] and row["backend"] != "intent"
            row["repeated"] = any(
                earlier["question"] != question and earlier["reply"] and
                difflib.SequenceMatcher(None, earlier["reply"].lower(), row["reply"].lower()).ratio() >= 0.8
                for earlier in session)
            session.append(row)
            print(f"session {row['backend']:8s} {question!r} -> {row['reply']!r}", file=sys.stderr, flush=True)
    finally:
        await llm.close()
        if intents is not None:
            await intents.close()
    return {"questions": singles, "session": session}


FAILURES = ("recital", "invented_time", "wrong_language", "over_two_sentences", "empty")


def summarise(result: dict) -> dict:
    def rates(rows: list[dict], keys: tuple[str, ...]) -> dict:
        return {k: sum(bool(r.get(k)) for r in rows) for k in keys} | {"of": len(rows)}

    every = result["questions"] + result["session"]
    return {
        "questions": rates(result["questions"], FAILURES),
        "session": rates(result["session"], (*FAILURES, "repeated")),
        "answered_by_commands": sum(r["backend"] == "intent" for r in every),
        "first_text_ms_commands": percentiles([r["first_ms"] for r in every if r["backend"] == "intent" and r["first_ms"]]),
        "first_text_ms_llm": percentiles([r["first_ms"] for r in every if r["backend"] != "intent" and r["first_ms"]]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_args(parser, json_help="also write every reply and check to this file")
    args = parser.parse_args(argv)
    try:
        config, status = load_pinned(args.config, args.overrides)
        report = report_header(config, args.overrides)
        started = time.monotonic()
        report["result"] = asyncio.run(run(config, status))
        report["seconds"] = round(time.monotonic() - started, 1)
    except LuxaError as err:
        return failed("bench_answers", err)
    report["summary"] = summary = summarise(report["result"])
    q, s = summary["questions"], summary["session"]
    print(f"{q['of']} questions: " + ", ".join(f"{k} {q[k]}" for k in FAILURES))
    print(f"{s['of']}-turn session: " + ", ".join(f"{k} {s[k]}" for k in (*FAILURES, "repeated")))
    print(f"answered by commands: {summary['answered_by_commands']}; first text, commands "
          f"{summary['first_text_ms_commands']} ms, LLM {summary['first_text_ms_llm']} ms; {report['seconds']} s")
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
