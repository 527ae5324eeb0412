"""The event model's types: a versioned envelope with a typed, per-type ``data`` payload.

Guarantees:

- ``parse_event`` either returns a fully validated :class:`Event` or raises
  :class:`~pipeline.exceptions.EventValidationError` naming the dotted field and the reason. It never
  returns a partial event and raises nothing else for any JSON-shaped input.
- Money (``total_amount``, ``price``) and metric values are :class:`~decimal.Decimal`, never float.
  On the wire they are strings (``"59.97"``); a JSON number is accepted and taken by its shortest
  decimal text, which is the text the producer wrote for any value with up to 15 significant digits.
- ``timestamp`` must carry an offset; it is normalised to an aware UTC :class:`datetime`.
- ``event_to_wire`` gives the canonical wire form; ``parse_event(event_to_wire(e)) == e``.

The classes are named tuples: immutable (they are shared between plugins) and the cheapest objects
CPython builds, which matters because validation sits on the consumer's hot path. Derive a changed
copy with ``_replace``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final, NamedTuple

__all__ = [
    "SCHEMA_VERSION",
    "SUPPORTED_SCHEMA_VERSIONS",
    "Event",
    "EventData",
    "EventType",
    "OrderData",
    "OrderItem",
    "ProductViewData",
    "SystemMetricData",
    "UserActivityData",
]

SCHEMA_VERSION: Final = 1
"""The envelope version this code writes."""
SUPPORTED_SCHEMA_VERSIONS: Final = frozenset({1})
"""The versions ``parse_event`` accepts; anything else is a validation error, never a guess."""
MAX_ID_LENGTH: Final = 256
"""Required string fields (ids, names) are non-empty and at most this long."""


class EventType(StrEnum):
    """The event types the pipeline understands; anything else is invalid input."""

    USER_ACTIVITY = "user_activity"
    ORDER_EVENT = "order_event"
    PRODUCT_VIEW = "product_view"
    SYSTEM_METRIC = "system_metric"


class OrderItem(NamedTuple):
    product_id: str
    quantity: int
    price: Decimal


class OrderData(NamedTuple):
    order_id: str
    total_amount: Decimal
    items: tuple[OrderItem, ...]
    status: str


class ProductViewData(NamedTuple):
    product_id: str
    referrer: str | None = None
    device_type: str | None = None
    session_duration: int | float | None = None
    """Seconds spent in the viewing session so far, when the producer knows it."""


class UserActivityData(NamedTuple):
    activity_type: str
    page_url: str | None = None
    session_id: str | None = None


class SystemMetricData(NamedTuple):
    name: str
    value: Decimal
    unit: str
    dimensions: dict[str, str]


EventData = OrderData | ProductViewData | UserActivityData | SystemMetricData


class Event(NamedTuple):
    """One validated event. ``timestamp`` is aware UTC and decides every time bucket downstream."""

    event_id: str
    event_type: EventType
    schema_version: int
    timestamp: datetime
    source: str
    data: EventData
    user_id: str | None = None
    event_subtype: str | None = None
