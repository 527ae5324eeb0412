"""One event as one flat row: the shape every source binding hands to the SQL as the ``events`` table.

Both bindings use :func:`event_row`: the archive binding for each archived event, the stream binding
inside the decoding table function for each decoded event. So the SQL sees one schema,
:data:`EVENT_COLUMNS`, whichever the source.

Guarantees:

- :func:`event_row` never raises for a valid event. It returns an :class:`EventRow`, or a
  :class:`RowRejection` (a value, with the reason) when a value cannot be carried exactly by the SQL
  types: ``total_amount`` must fit ``DECIMAL(38, 10)`` below 10^18 with at most 10 decimal places (money is
  never rounded), ``session_duration`` must be below 10^15 seconds. Rejected events are bad rows of the
  analytics, counted and reported by the caller; they never reach a window.
- ``event_us`` is the event time in whole microseconds since 1970-01-01T00:00:00Z (exact, it orders
  ties); ``event_ms`` is ``event_us // 1000`` (floor), the rowtime Flink windows on (Flink's rowtime has
  millisecond precision).
- ``session_duration`` is seconds at millisecond precision, rounded half up from the event's own value
  (an int, or a float taken by its shortest decimal text); ``None`` when the event carries none.
- Only attribute access is used on events (``event.data.product_id``...), and only the fields of the
  event's own type are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Final, NamedTuple, cast

from pipeline.events import Event, EventType

if TYPE_CHECKING:
    from pipeline.events import OrderData, ProductViewData

__all__ = [
    "AMOUNT_SCALE",
    "DURATION_SCALE",
    "EVENT_COLUMNS",
    "MAX_AMOUNT",
    "MAX_DURATION_SECONDS",
    "EventRow",
    "RowRejection",
    "event_row",
    "event_us",
]

AMOUNT_SCALE: Final = 10
"""Decimal places money keeps in the SQL (``DECIMAL(38, 10)``): the event model's limit
(:mod:`pipeline.events.limits`), so no valid amount is ever rejected here; more would be, never rounded."""
MAX_AMOUNT: Final = Decimal(10) ** 18
"""Amounts are below this (the event model's limit): sums of 10^10 of them fit ``DECIMAL(38, 10)`` (Flink
returns NULL on overflow)."""
DURATION_SCALE: Final = 3
"""Session durations are carried in seconds with millisecond precision (``DECIMAL(38, 3)``)."""
MAX_DURATION_SECONDS: Final = Decimal(10) ** 15

EVENT_COLUMNS: Final = (
    ("event_id", "STRING NOT NULL"),
    ("event_type", "STRING NOT NULL"),
    ("event_us", "BIGINT NOT NULL"),
    ("event_ms", "BIGINT NOT NULL"),
    ("user_id", "STRING"),
    ("product_id", "STRING"),
    ("session_duration", f"DECIMAL(38, {DURATION_SCALE})"),
    ("order_id", "STRING"),
    ("total_amount", f"DECIMAL(38, {AMOUNT_SCALE})"),
    ("status", "STRING"),
)
"""The ``events`` table's physical columns, in order: ``(name, Flink SQL type)``."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)
_AMOUNT_QUANTUM: Final = Decimal(1).scaleb(-AMOUNT_SCALE)
_DURATION_QUANTUM: Final = Decimal(1).scaleb(-DURATION_SCALE)
_WIDE: Final = Context(prec=80, rounding=ROUND_HALF_UP)  # exact for every value below the bounds above


class EventRow(NamedTuple):
    """One event in :data:`EVENT_COLUMNS` order. Fields of other event types are ``None``."""

    event_id: str
    event_type: str
    event_us: int
    event_ms: int
    user_id: str | None
    product_id: str | None
    session_duration: Decimal | None
    order_id: str | None
    total_amount: Decimal | None
    status: str | None


@dataclass(frozen=True, slots=True)
class RowRejection:
    """A valid event the SQL types cannot carry exactly; ``reason`` names the field and the bound."""

    event_id: str
    event_type: str
    reason: str


def event_us(when: datetime) -> int:
    """Whole microseconds since the epoch of an aware datetime (exact; negative before 1970)."""
    return (when - _EPOCH) // _MICRO


def _duration(value: float | None) -> Decimal | str | None:
    """Seconds to the millisecond, half up; ``None`` stays ``None``; a reason (str) when out of bounds."""
    if value is None:
        return None
    seconds = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    if not seconds < MAX_DURATION_SECONDS:
        return f"data.session_duration: {value!r} s is not below 10^15 s"
    return seconds.quantize(_DURATION_QUANTUM, context=_WIDE)


def _amount(value: Decimal) -> Decimal | str:
    """The amount at :data:`AMOUNT_SCALE` places when that is exact and below :data:`MAX_AMOUNT`, else a reason."""
    if not (value.is_finite() and 0 <= value < MAX_AMOUNT):
        return f"data.total_amount: {value} is not in [0, 10^18)"
    try:
        scaled = value.quantize(_AMOUNT_QUANTUM, context=_WIDE)
    except InvalidOperation:  # pragma: no cover - the bound above keeps quantize within the context
        return f"data.total_amount: {value} cannot be scaled to {AMOUNT_SCALE} places"
    if scaled != value:
        return f"data.total_amount: {value} has more than {AMOUNT_SCALE} decimal places (money is never rounded)"
    return scaled


def event_row(event: Event) -> EventRow | RowRejection:
    """The event as an :class:`EventRow`, or why it cannot be one (see the module docstring)."""
    kind = str(event.event_type)
    micros = event_us(event.timestamp)
    product_id = order_id = status = None
    duration: Decimal | None = None
    amount: Decimal | None = None
    if event.event_type == EventType.PRODUCT_VIEW:
        view = cast("ProductViewData", event.data)
        product_id = view.product_id
        checked = _duration(view.session_duration)
        if isinstance(checked, str):
            return RowRejection(event.event_id, kind, checked)
        duration = checked
    elif event.event_type == EventType.ORDER_EVENT:
        order = cast("OrderData", event.data)
        order_id, status = order.order_id, order.status
        checked_amount = _amount(order.total_amount)
        if isinstance(checked_amount, str):
            return RowRejection(event.event_id, kind, checked_amount)
        amount = checked_amount
    return EventRow(
        event.event_id, kind, micros, micros // 1000, event.user_id, product_id, duration, order_id, amount, status
    )
