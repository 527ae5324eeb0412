"""The reference results: what the stores must hold after a stream of events, computed the slow, obvious way.

Tests (unit, functional, end-to-end) compare the real pipeline against these functions, so they are
written to be checked by reading, not to be fast: one pass over the whole stream per table, plain
dicts, and time formatted field by field. They share no code with the plugins (not even
:mod:`pipeline.plugins.timefmt`): an agreement between the two is evidence, not an echo.

- :func:`expected_tables`: every item of every table the plugins write, for a whole stream.
- :func:`expected_messages`: the fulfilment messages, one per completed order.
- :func:`apply_effects`: the naive fold of effects into tables (what a store does, without the
  exactly-once machinery): the reference for an in-memory writer and for the batching property.
- :func:`messages_of`: the naive fold of :class:`Message` effects into delivered bodies.

Shape of a result: ``{table: {item_key: item}}`` where ``item_key`` is the :data:`ItemKey` of the
item and ``item`` holds its key attributes and every attribute the effects store (counters,
extremes and their companions, put-once attributes), nothing else (no watermarks). A table with no
item is absent. Values are ``str``, ``int`` or :class:`~decimal.Decimal`, never float.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from types import MappingProxyType
from typing import Final

from pipeline.events import Event, EventType, OrderData, ProductViewData, SystemMetricData, UserActivityData
from pipeline.metrics.effects import Add, Effect, Extreme, ItemKey, Message, PutOnce, Scalar
from pipeline.plugins.base import PluginSettings

__all__ = ["Tables", "apply_effects", "expected_messages", "expected_tables", "messages_of"]

Tables = dict[str, dict[ItemKey, dict[str, Scalar]]]
_Session = tuple[datetime, datetime]  # (last activity, session start)

_DEFAULTS: Final = PluginSettings()
_NO_SEGMENTS: Final[Mapping[str, str]] = MappingProxyType({})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def expected_tables(
    events: Iterable[Event],
    *,
    user_segments: Mapping[str, str] = _NO_SEGMENTS,
    default_segment: str = _DEFAULTS.default_segment,
    session_timeout: timedelta = _DEFAULTS.session_timeout,
    activity_ttl: timedelta = _DEFAULTS.activity_ttl,
) -> Tables:
    """The contents of every table after processing ``events`` in order, from empty tables.

    Duplicate event ids count once (the first occurrence). The keyword arguments are the
    :class:`~pipeline.plugins.base.PluginSettings`, with the same defaults.
    """
    stream = _first_occurrences(events)
    tables: Tables = {}
    for name, items in (
        ("order_metrics", _order_metrics(stream)),
        ("order_claims", _order_claims(stream)),
        ("product_metrics", _product_metrics(stream)),
        ("user_activities", _user_activities(stream, user_segments, default_segment, session_timeout, activity_ttl)),
        ("user_sessions", _user_sessions(stream, session_timeout)),
        ("system_metrics", _system_metrics(stream)),
    ):
        if items:
            tables[name] = items
    return tables


def expected_messages(events: Iterable[Event]) -> list[dict[str, object]]:
    """The fulfilment message bodies, in stream order: one per order's first completed event.

    Each was sent with deduplication id ``body["event_id"]`` and group id ``body["order_id"]``.
    """
    out: list[dict[str, object]] = []
    for event, order, claim in _claims(_first_occurrences(events)):
        if claim == "status=completed":
            out.append(
                {
                    "order_id": order.order_id,
                    "user_id": event.user_id,
                    "total_amount": str(order.total_amount),
                    "items": [
                        {"product_id": item.product_id, "quantity": item.quantity, "price": str(item.price)}
                        for item in order.items
                    ],
                    "event_id": event.event_id,
                    "completed_at": _stamp(event.timestamp),
                }
            )
    return out


def apply_effects(effects: Iterable[Effect], into: Tables | None = None) -> Tables:
    """Fold table effects naively into ``into`` (a new result if ``None``), and return it.

    :class:`Add` sums (counters start at zero); :class:`Extreme` keeps the strictly better value and
    writes its companions only with it (a tie keeps the first); :class:`PutOnce` keeps the first item
    of a key. :class:`Message` effects are ignored (see :func:`messages_of`). Mutates ``into``.
    """
    tables: Tables = {} if into is None else into
    for effect in effects:
        if isinstance(effect, Message):
            continue
        table = tables.setdefault(effect.table, {})
        if isinstance(effect, PutOnce):
            if effect.key not in table:
                table[effect.key] = dict(effect.item)
            continue
        item = table.setdefault(effect.key, dict(effect.key))
        if isinstance(effect, Add):
            for name, amount in effect.amounts.items():
                _add(item, name, amount)
        elif _improves(effect, item.get(effect.attribute)):
            item[effect.attribute] = effect.value
            item.update(effect.companions)
    return tables


def messages_of(effects: Iterable[Effect], queue: str = "fulfilment") -> list[dict[str, object]]:
    """The bodies a queue delivers: the first message of each deduplication id, in order."""
    seen: set[str] = set()
    out: list[dict[str, object]] = []
    for effect in effects:
        if isinstance(effect, Message) and effect.queue == queue and effect.dedup_id not in seen:
            seen.add(effect.dedup_id)
            out.append(dict(effect.body))
    return out


# --------------------------------------------------------------------------- folding helpers


def _add(item: dict[str, Scalar], name: str, amount: int | Decimal) -> None:
    current = item.get(name, 0)
    if isinstance(current, str):
        raise TypeError(f"cannot add to the string attribute {name!r}")
    with localcontext(prec=1000):  # exact: never the 28-digit default, whatever the operands
        item[name] = current + amount


def _improves(effect: Extreme, current: Scalar | None) -> bool:
    if current is None:
        return True
    new = effect.value
    if isinstance(new, str) != isinstance(current, str):
        raise TypeError(f"{effect.attribute!r} holds {current!r}, cannot compare with {new!r}")
    if effect.kind == "max":
        return new > current  # type: ignore[operator]  # same kind, checked above
    return new < current  # type: ignore[operator]


# --------------------------------------------------------------------------- time, field by field


def _utc(when: datetime) -> datetime:
    if when.utcoffset() is None:
        raise ValueError("naive datetime")
    return when.astimezone(UTC)


def _day(when: datetime) -> str:
    u = _utc(when)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}"


def _hour(when: datetime) -> str:
    return f"{_day(when)}#{_utc(when).hour:02d}"


def _minute(when: datetime) -> str:
    u = _utc(when)
    return f"{_day(when)}T{u.hour:02d}:{u.minute:02d}"


def _stamp(when: datetime) -> str:
    u = _utc(when)
    return f"{_minute(when)}:{u.second:02d}.{u.microsecond:06d}Z"


def _whole_seconds(span: timedelta) -> int:
    """Floor of a span in seconds (``timedelta`` normalises microseconds into ``0..999999``)."""
    return span.days * 86_400 + span.seconds


# --------------------------------------------------------------------------- per table


def _first_occurrences(events: Iterable[Event]) -> list[Event]:
    seen: set[str] = set()
    out = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            out.append(event)
    return out


def _status(text: str) -> str:
    """The counted name of a status, written out from the table in the plugin's documentation."""
    lowered = text.strip().lower()
    if lowered in ("complete", "completed", "fulfilled"):
        return "completed"
    if lowered in ("canceled", "cancelled"):
        return "cancelled"
    return lowered


def _claims(stream: list[Event]) -> list[tuple[Event, OrderData, str]]:
    """Each claim and the event that took it: the first event of each order (claim ``order``) and the
    first event of each (order, status) (claim ``status=<status>``), in stream order."""
    taken: set[tuple[str, str]] = set()
    out: list[tuple[Event, OrderData, str]] = []
    for event in stream:
        if event.event_type is not EventType.ORDER_EVENT or not isinstance(event.data, OrderData):
            continue
        for claim in ("order", f"status={_status(event.data.status)}"):
            if (event.data.order_id, claim) not in taken:
                taken.add((event.data.order_id, claim))
                out.append((event, event.data, claim))
    return out


def _order_metrics(stream: list[Event]) -> dict[ItemKey, dict[str, Scalar]]:
    items: dict[ItemKey, dict[str, Scalar]] = {}

    def count(metric_type: str, bucket: str, counters: Mapping[str, int | Decimal]) -> None:
        key: ItemKey = (("metric_type", metric_type), ("time_bucket", bucket))
        item = items.setdefault(key, {"metric_type": metric_type, "time_bucket": bucket})
        for name, amount in counters.items():
            _add(item, name, amount)

    for event, order, claim in _claims(stream):
        hour, day = _hour(event.timestamp), _day(event.timestamp)
        if claim == "order":
            counters: dict[str, int | Decimal] = {
                "order_count": 1,
                "total_revenue": order.total_amount,
                "items_sold": sum(item.quantity for item in order.items),
            }
            count("hourly_orders", hour, counters)
            count("daily_orders", day, counters)
            continue
        status = claim.removeprefix("status=")
        count("hourly_order_status", f"{hour}#{status}", {"orders": 1})
        count("daily_order_status", f"{day}#{status}", {"orders": 1})
        if status == "completed":
            counters = {"completed_orders": 1, "completed_revenue": order.total_amount}
        elif status == "cancelled":
            counters = {"cancelled_orders": 1}
        else:
            continue
        count("hourly_orders", hour, counters)
        count("daily_orders", day, counters)
    return items


def _order_claims(stream: list[Event]) -> dict[ItemKey, dict[str, Scalar]]:
    items: dict[ItemKey, dict[str, Scalar]] = {}
    for event, order, claim in _claims(stream):
        key: ItemKey = (("order_id", order.order_id), ("claim", claim))
        items[key] = {
            "order_id": order.order_id,
            "claim": claim,
            "event_id": event.event_id,
            "claimed_at": _stamp(event.timestamp),
        }
    return items


def _product_metrics(stream: list[Event]) -> dict[ItemKey, dict[str, Scalar]]:
    items: dict[ItemKey, dict[str, Scalar]] = {}
    for event in stream:
        if not isinstance(event.data, ProductViewData):
            continue
        product, day = event.data.product_id, _day(event.timestamp)
        key: ItemKey = (("product_id", product), ("metric_date", day))
        item = items.setdefault(key, {"product_id": product, "metric_date": day})
        _add(item, "view_count", 1)
        _add(item, f"hour_{_utc(event.timestamp).hour:02d}", 1)
        seen = _stamp(event.timestamp)
        previous = item.get("last_viewed")
        if not isinstance(previous, str) or seen > previous:
            item["last_viewed"] = seen
    return items


def _activities(stream: list[Event]) -> list[tuple[Event, str, UserActivityData]]:
    return [
        (event, event.user_id, event.data)
        for event in stream
        if isinstance(event.data, UserActivityData) and event.user_id  # no user: nothing to key by
    ]


def _session_durations(stream: list[Event], timeout: timedelta) -> tuple[list[int], dict[str, _Session]]:
    """Each activity's session duration, and each user's final (last activity, session start)."""
    durations: list[int] = []
    sessions: dict[str, _Session] = {}
    for event, user, _ in _activities(stream):
        t = _utc(event.timestamp)
        if user not in sessions:
            sessions[user] = (t, t)
            durations.append(0)
            continue
        last, start = sessions[user]
        if t < last:  # late: counted in no session, and moves nothing
            durations.append(0)
        elif t - last > timeout:
            sessions[user] = (t, t)
            durations.append(0)
        else:
            sessions[user] = (t, start)
            durations.append(_whole_seconds(t - start))
    return durations, sessions


def _user_activities(
    stream: list[Event],
    segments: Mapping[str, str],
    default_segment: str,
    timeout: timedelta,
    keep_for: timedelta,
) -> dict[ItemKey, dict[str, Scalar]]:
    durations, _ = _session_durations(stream, timeout)
    items: dict[ItemKey, dict[str, Scalar]] = {}
    for (event, user, data), duration in zip(_activities(stream), durations, strict=True):
        sort_key = f"{_stamp(event.timestamp)}#{event.event_id}"
        item: dict[str, Scalar] = {"user_id": user, "timestamp": sort_key, "activity_type": data.activity_type}
        if data.page_url is not None:
            item["page_url"] = data.page_url
        if data.session_id is not None:
            item["session_id"] = data.session_id
        item["session_duration"] = duration
        item["user_segment"] = segments.get(user, default_segment)
        item["event_id"] = event.event_id
        item["ttl"] = _whole_seconds(_utc(event.timestamp) + keep_for - _EPOCH)
        items.setdefault((("user_id", user), ("timestamp", sort_key)), item)
    return items


def _user_sessions(stream: list[Event], timeout: timedelta) -> dict[ItemKey, dict[str, Scalar]]:
    _, sessions = _session_durations(stream, timeout)
    return {
        (("user_id", user),): {"user_id": user, "last_activity": _stamp(last), "session_start": _stamp(start)}
        for user, (last, start) in sessions.items()
    }


def _escape(text: str) -> str:
    replacements = {"%": "%25", "|": "%7C", ",": "%2C", "=": "%3D"}
    return "".join(replacements.get(char, char) for char in text)


def _system_metrics(stream: list[Event]) -> dict[ItemKey, dict[str, Scalar]]:
    items: dict[ItemKey, dict[str, Scalar]] = {}
    for event in stream:
        if not isinstance(event.data, SystemMetricData):
            continue
        data = event.data
        dimensions = [f"{_escape(k)}={_escape(data.dimensions[k])}" for k in sorted(data.dimensions)]
        series = _escape(data.name) + "|" + ",".join(dimensions)
        minute = _minute(event.timestamp)
        item = items.setdefault((("metric_key", series), ("minute", minute)), {"metric_key": series, "minute": minute})
        _add(item, "count", 1)
        _add(item, "sum", data.value)
        high, low = item.get("max"), item.get("min")
        if not isinstance(high, Decimal) or data.value > high:
            item["max"] = data.value
        if not isinstance(low, Decimal) or data.value < low:
            item["min"] = data.value
    return items
