"""Reading Wyoming events from a client that may send anything.

`wyoming.event.async_read_event` turns a malformed header into "end of stream" (the client is
dropped without a word) and trusts `data_length`/`payload_length` (a client announcing 4 GB makes
the server buffer until memory runs out). This reader follows the same framing (a JSON header
line, then `data_length` bytes of JSON, then `payload_length` bytes) but bounds every part and
raises BadFrame with a reason, so the handler can answer a Wyoming `error` event first.
Events are still `wyoming.event.Event`, and everything is written by the package itself.
"""
from __future__ import annotations

import asyncio
import json

from wyoming.event import Event


class BadFrame(Exception):
    """The byte stream is not Wyoming framing: after this the connection cannot be trusted."""


async def read_event(reader: asyncio.StreamReader, max_bytes: int) -> Event | None:
    """The next event, or None when the client closed the stream (also mid-event)."""
    try:
        line = await reader.readline()
    except ValueError:  # asyncio's line limit: the header never ended
        raise BadFrame("header line too long (no newline)") from None
    if not line.endswith(b"\n"):
        return None
    try:
        header = json.loads(line)
    except ValueError:
        raise BadFrame("header line is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str) or not header["type"]:
        raise BadFrame("header must be a JSON object with a string 'type'")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise BadFrame("header 'data' must be a JSON object")
    try:
        extra = await _read_block(reader, header, "data_length", max_bytes)
        payload = await _read_block(reader, header, "payload_length", max_bytes)
    except asyncio.IncompleteReadError:
        return None
    if extra:
        try:
            more = json.loads(extra)
        except ValueError:
            raise BadFrame("data block is not JSON") from None
        if not isinstance(more, dict):
            raise BadFrame("data block must be a JSON object")
        data.update(more)
    return Event(type=header["type"], data=data, payload=payload)


async def _read_block(reader: asyncio.StreamReader, header: dict, key: str, max_bytes: int) -> bytes | None:
    length = header.get(key)
    if length is None or length == 0:
        return None
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise BadFrame(f"{key} must be a non-negative integer")
    if length > max_bytes:
        raise BadFrame(f"{key} {length} is above the limit of {max_bytes} bytes (wyoming.max_event_bytes)")
    return await reader.readexactly(length)
