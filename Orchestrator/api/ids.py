"""Identifiers that come from clients (voice ids, chat session ids).

They end up as dictionary keys and, in the clone backend's store, as file names: anything but
plain letters, digits, '-' and '_' is refused before it reaches either.
"""
from __future__ import annotations

import re

from Orchestrator.api.errors import ApiError

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_ID = re.compile(ID_PATTERN)


def checked_id(value: str, what: str) -> str:
    if not _ID.fullmatch(value):
        raise ApiError(422, "invalid_id", f"{what} {value[:80]!r} is not a valid id "
                       "(1-64 letters, digits, '-' or '_'; no paths)")
    return value
