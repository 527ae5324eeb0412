"""The canonical wire form of an event: what producers write and what the decoder reads back.

``encode_event(e)`` is compact JSON with ``event_type`` first, money as decimal strings, the timestamp
as RFC 3339 UTC (``...Z``) and absent optional fields left out. ``decode_event(encode_event(e)) == e``
for every valid event ``e``.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from pipeline.events.types import Event

__all__ = ["encode_event", "event_to_wire"]

encode_event: Final = msgspec.json.Encoder(decimal_format="string").encode
"""The canonical wire bytes of one event (thread-safe; msgspec encoders keep no state between calls)."""


def event_to_wire(event: Event) -> dict[str, Any]:
    """The canonical form as a JSON-ready dict (strings for money and time)."""
    wire: dict[str, Any] = msgspec.to_builtins(event)
    return wire
