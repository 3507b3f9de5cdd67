"""Times, dates and durations said the way people say them, in the answer's language (Babel)."""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time


def now(time_zone: str | None) -> dt.datetime:
    """The wall clock in the configured zone; with none, the system's own."""
    return dt.datetime.now(ZoneInfo(time_zone)) if time_zone else dt.datetime.now().astimezone()


def say_time(moment: dt.datetime, language: str) -> str:
    if language == "fr":  # "14 h 05" is read letter by letter by some voices; "14 heures 5" never is
        return f"{moment.hour} heure{'s' if moment.hour > 1 else ''}" + (f" {moment.minute}" if moment.minute else "")
    return format_time(moment, format="short", locale=language)


def say_date(moment: dt.datetime, language: str) -> str:
    if language == "en":
        return format_date(moment, format="EEEE, MMMM d, y", locale="en")
    return format_date(moment, format="EEEE d MMMM y", locale=language)


def say_duration(seconds: float, phrases: dict[str, Any]) -> str:
    """3725 -> "1 hour, 2 minutes and 5 seconds" (the unit words come from the language's phrases)."""
    total = max(0, round(seconds))
    parts = []
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        count, total = divmod(total, size)
        if count:
            one, many = phrases["units"][unit]
            parts.append(f"{count} {one if count == 1 else many}")
    if not parts:
        one, many = phrases["units"]["second"]
        return f"0 {many}"
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} {phrases['and']} {parts[-1]}"


def duration_slots(slots: dict[str, Any], prefix: str = "") -> float | None:
    """Seconds from hassil's hours/minutes/seconds slots (HA writes "half" as 30), None when none is given."""
    seconds, given = 0.0, False
    for unit, size in (("hours", 3600), ("minutes", 60), ("seconds", 1)):
        value = slots.get(prefix + unit)
        if value is None:
            continue
        given = True
        seconds += (30.0 if str(value) in ("half", "1/2") else float(value)) * size
    return seconds if given else None
