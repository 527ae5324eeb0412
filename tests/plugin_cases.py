"""Builders shared by the plugin tests (tests/unit/test_plugins*.py): events at a fixed instant, a batch
context holding given stored items, an order, and filters over effects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from pipeline.events import Event, EventData, OrderData, OrderItem, UserActivityData, new_event
from pipeline.metrics.effects import Effect, ItemKey, PutOnce
from pipeline.plugins import BatchContext
from pipeline.plugins.orders import claim_key
from pipeline.plugins.timefmt import stamp
from pipeline.plugins.user_activity import user_key

__all__ = [
    "T0",
    "activity_event",
    "effects_of",
    "first_occurrences",
    "make_context",
    "make_event",
    "only_row",
    "order_data",
]


T0 = datetime(2026, 11, 24, 10, 15, 0, 250_000, tzinfo=UTC)


def make_event(
    data: EventData, at: datetime = T0, event_id: str = "e-1", user_id: str | None = "u-1", subtype: str | None = None
) -> Event:
    return new_event(event_id=event_id, timestamp=at, source="web", data=data, user_id=user_id, event_subtype=subtype)


def make_context(
    *,
    sessions: dict[str, tuple[datetime, datetime]] | None = None,
    segments: dict[str, str] | None = None,
    claims: dict[tuple[str, str], str] | None = None,
) -> BatchContext:
    """A context holding these stored items, keyed as the plugins declare them."""
    items: dict[tuple[str, ItemKey], dict[str, object]] = {}
    for user, (last, start) in (sessions or {}).items():
        items[("user_sessions", (("user_id", user),))] = {"last_activity": stamp(last), "session_start": stamp(start)}
    for user, segment in (segments or {}).items():
        items[("store", user_key(user))] = {"PK": f"USER#{user}", "SK": "#METADATA", "user_segment": segment}
    for (order_id, claim), event_id in (claims or {}).items():
        items[("order_claims", claim_key(order_id, claim))] = {"event_id": event_id}
    return BatchContext(items)


def order_data(order_id: str = "o-1", status: str = "created", total: str = "59.97") -> OrderData:
    return OrderData(
        order_id,
        Decimal(total),
        (OrderItem("p-1", 2, Decimal("19.99")), OrderItem("p-2", 1, Decimal("19.99"))),
        status,
    )


def activity_event(at: datetime, event_id: str, user_id: str | None = "u-1", page_url: str | None = "/") -> Event:
    return make_event(UserActivityData("page_view", page_url, "s-1"), at, event_id, user_id)


def first_occurrences(raw: Sequence[Event]) -> list[Event]:
    """What the processor hands the plugins: the first event of each id, in stream order."""
    seen: set[str] = set()
    unique = []
    for event in raw:
        if event.event_id not in seen:
            seen.add(event.event_id)
            unique.append(event)
    return unique


def only_row(effects: Sequence[Effect]) -> PutOnce:
    (row,) = (e for e in effects if isinstance(e, PutOnce))
    return row


def effects_of(kind: type[Effect], effects: Sequence[Effect]) -> list[Effect]:
    return [e for e in effects if isinstance(e, kind)]
