"""The event model: types (:mod:`.types`), the typed decoder (:mod:`.decoder`), limits (:mod:`.limits`)
and the canonical wire form (:mod:`.wire`).

Guarantees:

- :func:`decode_event` (bytes) and :func:`parse_event` (a parsed JSON value) either return a fully
  validated :data:`Event` or raise :class:`~pipeline.exceptions.EventValidationError` naming the
  dotted field and the reason, and nothing else, for any input.
- Money (``total_amount``, ``price``) and metric values are :class:`~decimal.Decimal`, read exactly
  from the JSON number or string; timestamps are aware UTC; unknown fields are ignored.
- ``decode_event(encode_event(e)) == e`` for every valid event ``e``.
"""

from __future__ import annotations

from pipeline.events.decoder import DEFAULT_POLICY, decode_event, parse_event
from pipeline.events.limits import ValidationPolicy
from pipeline.events.types import (
    SCHEMA_VERSION,
    Event,
    EventData,
    EventType,
    OrderData,
    OrderEvent,
    OrderItem,
    ProductViewData,
    ProductViewEvent,
    SystemMetricData,
    SystemMetricEvent,
    UserActivityData,
    UserActivityEvent,
    new_event,
)
from pipeline.events.wire import encode_event, event_to_wire

__all__ = [
    "DEFAULT_POLICY",
    "SCHEMA_VERSION",
    "Event",
    "EventData",
    "EventType",
    "OrderData",
    "OrderEvent",
    "OrderItem",
    "ProductViewData",
    "ProductViewEvent",
    "SystemMetricData",
    "SystemMetricEvent",
    "UserActivityData",
    "UserActivityEvent",
    "ValidationPolicy",
    "decode_event",
    "encode_event",
    "event_to_wire",
    "new_event",
    "parse_event",
]
