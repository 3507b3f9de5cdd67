"""Which command a transcript is: Home Assistant's sentence templates, matched by hassil.

Home Assistant's intents (home-assistant-intents) give the sentences people really say in many
languages; LUXA's own (data/<lang>.yaml: stop, repeat, the assistant's volume) are written in the
same template language and merged over them. Device names and areas come from the configured
entities, so "turn on the kitchen light" matches only a light LUXA knows; a device sentence with a
name LUXA does not know is still recognised (as unknown), so it gets an honest answer instead of
an LLM's invented "done".
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml
from hassil import Intents, RecognizeResult, SlotList, TextSlotList, merge_dict, recognize_best
from hassil.errors import MissingListError
from hassil.models import UnmatchedTextEntity
from home_assistant_intents import get_intents

from Config.schema import DeviceEntity

log = logging.getLogger(__name__)

# Home Assistant intents LUXA answers itself; any other match goes to the LLM as a question.
HANDLED = frozenset({
    "HassGetCurrentTime", "HassGetCurrentDate", "HassNevermind",
    "HassStartTimer", "HassCancelTimer", "HassCancelAllTimers", "HassPauseTimer", "HassUnpauseTimer",
    "HassTimerStatus", "HassIncreaseTimer", "HassDecreaseTimer",
    "HassSetVolume", "HassSetVolumeRelative",
    "HassTurnOn", "HassTurnOff", "HassLightSet",
    "LuxaStop", "LuxaRepeat", "LuxaGetState", "LuxaIdentity",
})
# commands that only answer, unlike a timer or a light (IntentMatch.whole_question)
ANSWER_ONLY = frozenset({"HassGetCurrentTime", "HassGetCurrentDate", "HassTimerStatus", "LuxaGetState",
                         "LuxaIdentity", "LuxaRepeat"})
DEVICE_INTENTS = frozenset({"HassTurnOn", "HassTurnOff", "HassLightSet", "LuxaGetState"})
# lists Home Assistant fills from its own registry; LUXA's devices fill name and area
REGISTRY_LISTS = ("name", "area", "floor")
MAX_UNKNOWN_NAME_WORDS = 4
# literal characters of the template a device sentence must match ("turn on", "allume"): hassil's
# templates that are little more than "[the] {name}" otherwise take "My name is Ada" for a device
MIN_LITERAL_CHARS = 6


@dataclass(frozen=True)
class IntentMatch:
    intent: str
    language: str
    slots: dict[str, Any] = field(default_factory=dict)  # slot -> value (a device id for name)
    spoken: dict[str, str] = field(default_factory=dict)  # slot -> the words as heard
    unknown: dict[str, str] = field(default_factory=dict)  # device slots heard but not known

    @property
    def whole_question(self) -> bool:
        """A command that only answers, with every device it names known: a turn heard as one may
        end without waiting (nothing is done that a user who goes on would have to undo)."""
        return self.intent in ANSWER_ONLY and not self.unknown


@dataclass
class _Language:
    intents: Intents
    phrases: dict[str, Any]


def _own_data(language: str) -> dict[str, Any]:
    path = resources.files("Orchestrator.intents") / "data" / f"{language}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}


class IntentMatcher:
    def __init__(self, languages: list[str], entities: list[DeviceEntity]) -> None:
        self.languages: dict[str, _Language] = {}
        for language in languages:
            base = get_intents(language)
            if base is None:
                log.warning("intents: Home Assistant has no sentences for %r; that language goes to the LLM", language)
                continue
            own = _own_data(language)
            merge_dict(base, {"intents": own.get("intents", {}), "lists": own.get("lists", {})})
            self.languages[language] = _Language(Intents.from_dict(base), own.get("responses", {}))
        self.set_entities(entities)

    def set_entities(self, entities: list[DeviceEntity]) -> None:
        """Names, aliases and areas the device sentences may name."""
        # the domain goes with the name, as in Home Assistant: "set the kitchen light to 50 %" needs a light
        names = [(spoken, e.id, {"domain": e.id.split(".")[0]}) for e in entities for spoken in [e.name, *e.aliases]]
        areas = sorted({(spoken, e.area) for e in entities if e.area for spoken in [e.area, *e.area_aliases]})
        self.slot_lists: dict[str, SlotList] = {
            "name": TextSlotList.from_tuples(names, allow_template=False),
            "area": TextSlotList.from_tuples(areas, allow_template=False),
            "floor": TextSlotList.from_strings([], allow_template=False),
        }

    def phrases(self, language: str) -> dict[str, Any]:
        return self.languages[language].phrases

    def language_for(self, language: str | None) -> str | None:
        """The loaded language a transcript's language code ("fr", "fr-FR", None) maps to."""
        if language is None:
            return next(iter(self.languages), None)
        code = language.replace("_", "-").split("-")[0].lower()
        return code if code in self.languages else None

    def match(self, text: str, language: str | None) -> IntentMatch | None:
        """The command in `text`, in its language first; Whisper often names the wrong language for
        a two-word clip ("be quiet" as Norwegian), so the other loaded languages are tried next."""
        text = without_repeats(text)
        first = self.language_for(language)
        for lang in [first, *(other for other in self.languages if other != first)] if text else []:
            if lang is not None and (found := self._match(text, lang)) is not None:
                return found
        return None

    def _match(self, text: str, lang: str) -> IntentMatch | None:
        intents = self.languages[lang].intents
        result = self._recognize(text, intents, lang, unmatched=False)
        if result is None:
            # a device sentence about a name or area LUXA does not know: recognised, answered honestly
            result = self._recognize(text, intents, lang, unmatched=True)
            if result is None or result.intent.name not in DEVICE_INTENTS or not _names_a_device(result):
                return None
        if result.intent.name not in HANDLED:
            return None
        return IntentMatch(
            result.intent.name, lang,
            slots={name: e.value for name, e in result.entities.items()},
            spoken={name: str(e.text).strip() for name, e in result.entities.items()},
            unknown={name: str(e.text).strip() for name, e in result.unmatched_entities.items()
                     if name in REGISTRY_LISTS and isinstance(e, UnmatchedTextEntity) and str(e.text).strip()},
        )

    def _recognize(self, text: str, intents: Intents, language: str, unmatched: bool) -> RecognizeResult | None:
        try:
            return recognize_best(text, intents, slot_lists=self.slot_lists, language=language,
                                  allow_unmatched_entities=unmatched)
        except MissingListError as err:  # a template naming a list no one fills: not a command we know
            log.debug("intents: %s", err)
            return None


def _names_a_device(result: RecognizeResult) -> bool:
    """An unknown name is believed only in a short device sentence ("turn on the garage light"): a
    template that is little more than {name} would otherwise take any question for a device."""
    unknown = " ".join(str(getattr(e, "text", "")) for e in result.unmatched_entities_list)
    return result.text_chunks_matched >= MIN_LITERAL_CHARS and 0 < len(unknown.split()) <= MAX_UNKNOWN_NAME_WORDS


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def without_repeats(text: str) -> str:
    """The text once: Whisper loops on short commands ("Turn on the light. Turn on the light. Turn
    Turn Turn"); a repeated sentence, a run of one word and a trailing cut-off repeat are dropped."""
    kept: list[str] = []
    for sentence in _SENTENCE.split(text.strip()):
        words = sentence.split()
        sentence = " ".join(w for i, w in enumerate(words) if i == 0 or _norm(w) != _norm(words[i - 1]))
        norm = _norm(sentence)
        if not norm or (kept and (norm == _norm(kept[-1]) or _norm(kept[0]).startswith(norm))):
            continue
        kept.append(sentence)
    return " ".join(kept)


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[\w']+", text.lower()))
