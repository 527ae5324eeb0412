"""The event model's types: one msgspec schema, a versioned envelope tagged by ``event_type``.

Each event type is its own envelope class (:class:`OrderEvent`, :class:`ProductViewEvent`,
:class:`UserActivityEvent`, :class:`SystemMetricEvent`) carrying its typed ``data``; ``Event`` is
their union and ``event.event_type`` is a class constant. msgspec decodes JSON bytes straight into
these classes (see :mod:`pipeline.events.decoder`), checking types, required fields, string lengths
and integer ranges in C; :mod:`pipeline.events.decoder` adds the few checks a schema cannot express.

Guarantees of an event returned by the decoder:

- money (``total_amount``, ``price``) and metric values are :class:`~decimal.Decimal`, read exactly
  from the JSON number or string the producer wrote, within :mod:`pipeline.events.limits`;
- ``timestamp`` is an aware :class:`~datetime.datetime` in UTC (``tzinfo is datetime.UTC``);
- unknown fields were ignored (the raw bytes keep them; the archive stores the raw bytes).

Objects are immutable (``frozen``) and never in reference cycles (``gc=False`` makes them cheap to
build and invisible to the cyclic GC); derive a changed copy with :func:`msgspec.structs.replace`.
Build events in code with :func:`new_event`; validation happens only when decoding.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar, Final, Literal

import msgspec

from pipeline.events.limits import (
    MAX_DIMENSIONS,
    MAX_ID_CHARS,
    MAX_ORDER_ITEMS,
    MAX_QUANTITY,
    MAX_SESSION_DURATION_S,
    MAX_STATUS_CHARS,
    MAX_TEXT_CHARS,
    MAX_URL_CHARS,
)

__all__ = [
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
    "new_event",
]

SCHEMA_VERSION: Final = 1
"""The envelope version this code reads and writes; anything else is a validation error, never a guess."""


class EventType(StrEnum):
    """The event types the pipeline understands; anything else is invalid input."""

    USER_ACTIVITY = "user_activity"
    ORDER_EVENT = "order_event"
    PRODUCT_VIEW = "product_view"
    SYSTEM_METRIC = "system_metric"


Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]
OptId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)] | None
OptText = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)] | None
OptName = Annotated[str, msgspec.Meta(max_length=MAX_ID_CHARS)] | None
Status = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_STATUS_CHARS, pattern=r"\S")]
Url = Annotated[str, msgspec.Meta(max_length=MAX_URL_CHARS)] | None
Quantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)]
Seconds = (
    Annotated[int, msgspec.Meta(ge=0, le=MAX_SESSION_DURATION_S)]
    | Annotated[float, msgspec.Meta(ge=0, le=MAX_SESSION_DURATION_S)]
    | None
)
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
Dimensions = Annotated[
    dict[Id, Annotated[str, msgspec.Meta(max_length=MAX_ID_CHARS)]], msgspec.Meta(max_length=MAX_DIMENSIONS)
]


class _Value(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """Common configuration: immutable, outside the cyclic GC, optional fields omitted on the wire."""


class OrderItem(_Value, frozen=True):
    product_id: Id
    quantity: Quantity
    price: Decimal


class OrderData(_Value, frozen=True):
    order_id: Id
    total_amount: Decimal
    items: Annotated[tuple[OrderItem, ...], msgspec.Meta(min_length=1, max_length=MAX_ORDER_ITEMS)]
    status: Status


class ProductViewData(_Value, frozen=True):
    product_id: Id
    referrer: OptText = None
    device_type: OptText = None
    session_duration: Seconds = None
    """Seconds spent in the viewing session so far, when the producer knows it."""


class UserActivityData(_Value, frozen=True):
    activity_type: Id
    page_url: Url = None
    session_id: OptName = None


_SERIES_ESCAPES: Final = str.maketrans({"%": "%25", "|": "%7C", ",": "%2C", "=": "%3D"})


class SystemMetricData(_Value, frozen=True):
    name: Id
    value: Decimal
    unit: Id
    dimensions: Dimensions = msgspec.field(default_factory=dict)

    def series_key(self) -> str:
        """The metric series: ``name|k1=v1,k2=v2``, dimensions sorted by key.

        Injective: in names, dimension keys and values, ``%``, ``|``, ``,`` and ``=`` are
        percent-escaped (``%25``, ``%7C``, ``%2C``, ``%3D``), so two different series never share a
        key; ordinary names read unchanged.
        """
        dims = ",".join(
            f"{k.translate(_SERIES_ESCAPES)}={v.translate(_SERIES_ESCAPES)}" for k, v in sorted(self.dimensions.items())
        )
        return f"{self.name.translate(_SERIES_ESCAPES)}|{dims}"


EventData = OrderData | ProductViewData | UserActivityData | SystemMetricData


class _Envelope(_Value, frozen=True, kw_only=True, tag_field="event_type"):
    """What every event carries. ``timestamp`` is event time: it decides every bucket downstream."""

    event_id: Id
    schema_version: Literal[1]
    timestamp: AwareTime
    source: Id
    user_id: OptId = None
    event_subtype: OptText = None


class OrderEvent(_Envelope, frozen=True, kw_only=True, tag="order_event"):
    event_type: ClassVar[EventType] = EventType.ORDER_EVENT
    data: OrderData


class ProductViewEvent(_Envelope, frozen=True, kw_only=True, tag="product_view"):
    event_type: ClassVar[EventType] = EventType.PRODUCT_VIEW
    data: ProductViewData


class UserActivityEvent(_Envelope, frozen=True, kw_only=True, tag="user_activity"):
    """A user's activity; ``user_id`` is required (an activity row and a session are keyed by it)."""

    event_type: ClassVar[EventType] = EventType.USER_ACTIVITY
    user_id: Id  # narrowed from OptId: required for this type
    data: UserActivityData


class SystemMetricEvent(_Envelope, frozen=True, kw_only=True, tag="system_metric"):
    event_type: ClassVar[EventType] = EventType.SYSTEM_METRIC
    data: SystemMetricData


Event = OrderEvent | ProductViewEvent | UserActivityEvent | SystemMetricEvent
"""One validated event: the union of the four envelope classes (``isinstance(x, Event)`` works)."""

_CLASS_OF_DATA: Final[dict[type, type]] = {
    OrderData: OrderEvent,
    ProductViewData: ProductViewEvent,
    UserActivityData: UserActivityEvent,
    SystemMetricData: SystemMetricEvent,
}


def new_event(
    *,
    event_id: str,
    timestamp: datetime,
    source: str,
    data: EventData,
    user_id: str | None = None,
    event_subtype: str | None = None,
) -> Event:
    """An event built in code (generators, tests, stores); the envelope class follows ``data``'s type.

    Not validated: decode its wire bytes (``decode_event(encode_event(e))``) to check it.
    """
    cls = _CLASS_OF_DATA[type(data)]
    event: Event = cls(
        event_id=event_id,
        schema_version=1,
        timestamp=timestamp,
        source=source,
        data=data,
        user_id=user_id,
        event_subtype=event_subtype,
    )
    return event
