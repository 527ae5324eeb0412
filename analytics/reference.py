"""The reference: the windows the Flink job must produce, computed the slow, obvious way in plain Python.

Tests compare the real Flink job's items with :func:`expected_windows` over the same events in the same
order; the demo's verification can do the same. It shares no code with the job's path (not the row
mapping, not the SQL): it restates the rules, so an agreement between the two is evidence, not an echo.
It does use the project's event model and :func:`~pipeline.plugins.timefmt.stamp` (the stored time
format) and :mod:`analytics.metrics` (the item layout both sides must produce).

The rules, in the order the job applies them to the stream, event after event (arrival order):

1. **Carried exactly or rejected.** An order whose ``total_amount`` is not below 10^18 or has more than
   ten decimal places (``analytics.rows``: the event model's own limits, so a valid event never is), or
   a view whose ``session_duration`` is not below 10^15 s, is rejected (a bad
   row of the analytics): it takes no further part, not even in the watermark.
2. **Watermark.** Event time is taken in whole milliseconds (floor). After each event the watermark
   candidate is ``max(event time so far) - allowed_lateness``; a watermark is emitted when the
   candidate exceeds the last one emitted, and the first one only once it is above 0 (the epoch; Flink's
   watermark assigner starts there). An event sees the watermark emitted *before* it: none at first.
3. **Deduplication.** The first copy of an ``event_id`` counts; later copies are dropped (producers
   resend identical copies), whether the first copy was on time or late.
4. **Lateness.** A first copy whose event time is at or before the watermark it sees is late: it is
   counted in ``late_events_1h`` (per event type and hour of its own time) and in no window.
5. **Windows** (UTC, aligned to the epoch) over the on-time events:

   - ``product_views_1m``: per product and minute, ``view_count``, ``unique_viewers`` (distinct non-null
     ``user_id``), ``avg_session_duration`` over the views that carry a duration (absent when none
     does; views without one still count in the other two): the exact mean rounded half up to 38
     significant digits, then half up to 6 decimal places (Flink's ``AVG`` on ``DECIMAL``).
   - ``product_trends_5m``: per product, 5-minute windows starting every minute: ``view_count``,
     ``unique_viewers``.
   - ``top_products_1m``: per minute, the 10 products with the most views, ties broken by
     ``product_id`` ascending; rank 1 is the most viewed.
   - ``orders_1h``: the first on-time event of each ``order_id`` (smallest event time in milliseconds;
     of several in the same millisecond, the first to arrive; whatever its status) adds 1 to
     ``orders``, its ``total_amount`` to ``revenue`` and its non-null ``user_id`` to the distinct
     ``customers`` of its hour; the first event of each order whose status normalises to
     ``completed`` (lowercased; ``complete``/``completed``/``fulfilled``), chosen the same way, adds 1
     to ``completed_orders`` and its ``total_amount`` to ``completed_revenue`` of its own hour. An hour
     with neither has no item.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import TYPE_CHECKING, Final, cast

from analytics.metrics import Item, ItemKey, item_key
from analytics.rows import AMOUNT_SCALE, MAX_AMOUNT
from pipeline.events import Event, EventType
from pipeline.plugins.timefmt import stamp

if TYPE_CHECKING:
    from pipeline.events import OrderData, ProductViewData

__all__ = ["LateEvent", "Reference", "expected_windows"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = 1_000
_MINUTE: Final = 60 * _MS
_HOUR: Final = 60 * _MINUTE
_TOP: Final = 10
_HOP_SIZE: Final = 5 * _MINUTE
_COMPLETED: Final = frozenset({"complete", "completed", "fulfilled"})
_AVG_CONTEXT: Final = Context(prec=38, rounding=ROUND_HALF_UP)
_SIX_PLACES: Final = Decimal("0.000001")
_AMOUNT_QUANTUM: Final = Decimal(1).scaleb(-AMOUNT_SCALE)  # the SQL's money scale (analytics.rows)
_THREE_PLACES: Final = Decimal("0.001")
_BIG: Final = Context(prec=80, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class LateEvent:
    """An event dropped from every window because its time was at or before the watermark it saw."""

    event_id: str
    event_type: str
    event_ms: int
    watermark_ms: int


@dataclass(slots=True)
class Reference:
    """What the job must produce for a stream: its items, its late events, its rejected events."""

    items: dict[ItemKey, Item] = field(default_factory=dict)
    late: list[LateEvent] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    """Event ids of the events rule 1 rejects."""
    duplicates: int = 0
    on_time: int = 0


def _ms(when: datetime) -> int:
    return ((when - _EPOCH) // timedelta(microseconds=1)) // 1000


def _stamp(ms: int) -> str:
    return stamp(_EPOCH + timedelta(milliseconds=ms))


def _floor(ms: int, size: int) -> int:
    return ms - ms % size  # Python's % is non-negative for a positive size: floor, also before 1970


def _rejected(event: Event) -> bool:
    if event.event_type == EventType.ORDER_EVENT:
        amount = cast("OrderData", event.data).total_amount
        return not (0 <= amount < MAX_AMOUNT) or amount.quantize(_AMOUNT_QUANTUM, context=_BIG) != amount
    if event.event_type == EventType.PRODUCT_VIEW:
        duration = cast("ProductViewData", event.data).session_duration
        return duration is not None and not Decimal(repr(duration) if isinstance(duration, float) else duration) < (
            Decimal(10) ** 15
        )
    return False


def _duration(seconds: float) -> Decimal:
    value = Decimal(repr(seconds)) if isinstance(seconds, float) else Decimal(seconds)
    return value.quantize(_THREE_PLACES, context=_BIG)


def _window(metric: str, pk: str, sk: str, start: int, size: int, **values: str | int | Decimal | None) -> Item:
    item: Item = {
        "pk": pk,
        "sk": sk,
        "metric": metric,
        "window_start": _stamp(start),
        "window_end": _stamp(start + size),
    }
    item.update({name: value for name, value in values.items() if value is not None})
    return item


def expected_windows(events: Iterable[Event], allowed_lateness: timedelta) -> Reference:
    """Every item the job writes for ``events`` taken in this order (see the module docstring)."""
    lateness = allowed_lateness // timedelta(milliseconds=1)
    result = Reference()
    current = last = 0
    emitted: int | None = None
    seen: set[str] = set()
    on_time: list[Event] = []
    for event in events:
        if _rejected(event):
            result.rejected.append(event.event_id)
            continue
        t = _ms(event.timestamp)
        sees = emitted
        current = max(current, t - lateness)
        if current > last:
            last = emitted = current
        if event.event_id in seen:
            result.duplicates += 1
            continue
        seen.add(event.event_id)
        if sees is not None and t <= sees:
            result.late.append(LateEvent(event.event_id, str(event.event_type), t, sees))
        else:
            on_time.append(event)
    result.on_time = len(on_time)
    items: list[Item] = []
    items += _product_windows(on_time)
    items += _orders(on_time)
    late_counts = Counter((late.event_type, _floor(late.event_ms, _HOUR)) for late in result.late)
    for (kind, hour), count in late_counts.items():
        items.append(
            _window(
                "late_events_1h",
                f"late_events_1h#{kind}",
                _stamp(hour),
                hour,
                _HOUR,
                event_type=kind,
                late_events=count,
            )
        )
    result.items = {item_key(item): item for item in items}
    return result


def _product_windows(events: list[Event]) -> list[Item]:
    minute: dict[tuple[int, str], list[Event]] = defaultdict(list)
    hop: dict[tuple[int, str], list[Event]] = defaultdict(list)
    for event in events:
        if event.event_type != EventType.PRODUCT_VIEW:
            continue
        product = cast("ProductViewData", event.data).product_id
        start = _floor(_ms(event.timestamp), _MINUTE)
        minute[start, product].append(event)
        for first in range(start - _HOP_SIZE + _MINUTE, start + _MINUTE, _MINUTE):
            hop[first, product].append(event)
    items: list[Item] = []
    counts: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for (start, product), views in minute.items():
        durations = [
            _duration(d) for d in (cast("ProductViewData", v.data).session_duration for v in views) if d is not None
        ]
        average = None
        if durations:
            exact = _AVG_CONTEXT.divide(sum(durations, Decimal(0)), Decimal(len(durations)))
            average = exact.quantize(_SIX_PLACES, context=_BIG)
        items.append(
            _window(
                "product_views_1m",
                f"product_views_1m#{product}",
                _stamp(start),
                start,
                _MINUTE,
                product_id=product,
                view_count=len(views),
                unique_viewers=len({v.user_id for v in views if v.user_id is not None}),
                avg_session_duration=average,
            )
        )
        counts[start].append((len(views), product))
    for (start, product), views in hop.items():
        items.append(
            _window(
                "product_trends_5m",
                f"product_trends_5m#{product}",
                _stamp(start),
                start,
                _HOP_SIZE,
                product_id=product,
                view_count=len(views),
                unique_viewers=len({v.user_id for v in views if v.user_id is not None}),
            )
        )
    for start, ranked in counts.items():
        ranked.sort(key=lambda pair: (-pair[0], pair[1]))
        for rank, (count, product) in enumerate(ranked[:_TOP], 1):
            items.append(
                _window(
                    "top_products_1m",
                    "top_products_1m",
                    f"{_stamp(start)}#{rank:02d}",
                    start,
                    _MINUTE,
                    rank=rank,
                    product_id=product,
                    view_count=count,
                )
            )
    return items


@dataclass(slots=True)
class _Hour:
    orders: int = 0
    revenue: Decimal = Decimal(0)
    customers: set[str] = field(default_factory=set)
    completed_orders: int = 0
    completed_revenue: Decimal = Decimal(0)


def _orders(events: list[Event]) -> list[Item]:
    first: dict[str, Event] = {}
    completion: dict[str, Event] = {}

    def earlier(a: Event, b: Event) -> bool:  # a arrived after b: it wins only with a smaller millisecond
        return _ms(a.timestamp) < _ms(b.timestamp)

    for event in events:
        if event.event_type != EventType.ORDER_EVENT:
            continue
        order = cast("OrderData", event.data)
        if order.order_id not in first or earlier(event, first[order.order_id]):
            first[order.order_id] = event
        if order.status.lower() in _COMPLETED and (
            order.order_id not in completion or earlier(event, completion[order.order_id])
        ):
            completion[order.order_id] = event
    hours: dict[int, _Hour] = defaultdict(_Hour)
    for event in first.values():
        bucket = hours[_floor(_ms(event.timestamp), _HOUR)]
        bucket.orders += 1
        bucket.revenue += cast("OrderData", event.data).total_amount
        if event.user_id is not None:
            bucket.customers.add(event.user_id)
    for event in completion.values():
        bucket = hours[_floor(_ms(event.timestamp), _HOUR)]
        bucket.completed_orders += 1
        bucket.completed_revenue += cast("OrderData", event.data).total_amount
    return [
        _window(
            "orders_1h",
            "orders_1h",
            _stamp(start),
            start,
            _HOUR,
            orders=bucket.orders,
            revenue=bucket.revenue,
            customers=len(bucket.customers),
            completed_orders=bucket.completed_orders,
            completed_revenue=bucket.completed_revenue,
        )
        for start, bucket in hours.items()
    ]
