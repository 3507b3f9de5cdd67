"""Per-room metrics of the satellite host."""
from __future__ import annotations

from Core.metrics import counter, gauge, histogram

TURNS = counter("luxa_satellite_turns_total", "satellite turns by room and outcome", ("room", "outcome"))
LATENCY = histogram("luxa_satellite_latency_seconds",
                    "satellite: end of the utterance (endpointer) -> first reply audio sent to the satellite", ("room",))
CONNECTED = gauge("luxa_satellite_connected", "1 while LUXA is connected to the room's satellite", ("room",))
CONNECTS = counter("luxa_satellite_connections_total", "connection attempts by room and outcome", ("room", "outcome"))
