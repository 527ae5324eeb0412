"""The event model: types, validation (``parse_event``) and the canonical wire form.

Guarantees:

- ``parse_event`` either returns a fully validated :class:`Event` or raises
  :class:`~pipeline.exceptions.EventValidationError` naming the dotted field and the reason. It never
  returns a partial event and raises nothing else for any value ``orjson.loads`` can return.
- Money (``total_amount``, ``price``) and metric values are :class:`~decimal.Decimal`, never float.
  On the wire they are strings (``"59.97"``); a JSON number is accepted and taken by its shortest
  decimal text, which is the text the producer wrote for any value of up to 15 significant digits.
- ``timestamp`` must carry an offset; it is normalised to an aware UTC :class:`~datetime.datetime`.
- ``parse_event(orjson.loads(orjson.dumps(event_to_wire(e)))) == e`` for every valid event ``e``.
"""

from __future__ import annotations

from pipeline.events.fastpath import fast_parse
from pipeline.events.types import (
    SCHEMA_VERSION,
    Event,
    EventData,
    EventType,
    OrderData,
    OrderItem,
    ProductViewData,
    SystemMetricData,
    UserActivityData,
)
from pipeline.events.validate import checked_parse
from pipeline.events.wire import event_to_wire

__all__ = [
    "SCHEMA_VERSION",
    "Event",
    "EventData",
    "EventType",
    "OrderData",
    "OrderItem",
    "ProductViewData",
    "SystemMetricData",
    "UserActivityData",
    "event_to_wire",
    "parse_event",
]


def parse_event(obj: object) -> Event:
    """Validate one decoded JSON value and return the :class:`Event`.

    Raises :class:`~pipeline.exceptions.EventValidationError` (and nothing else) for any value
    ``orjson.loads`` can return. Canonical inputs take a flat fast path; the careful validator is the
    authority and produces the error message.
    """
    event = fast_parse(obj)
    return event if event is not None else checked_parse(obj)
