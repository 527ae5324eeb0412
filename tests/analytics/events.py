"""Events for the analytics tests, built from their wire form (JSON dicts) and validated by the project.

Every test of the analytics builds its events here, so a change of the event model touches one file:
events are made with :func:`pipeline.events.parse_event` from dicts and only read through attributes.
:func:`unvalidated` builds what validation would refuse, to test the analytics' own safety nets.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from pipeline.events import Event, parse_event

__all__ = ["BASE", "activity", "at", "order", "unvalidated", "view"]

BASE: Final = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
"""06:00:00Z on the reference workload's day: minute and hour windows start here."""


def at(seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, micro: int = 0) -> datetime:
    """``BASE`` plus an offset."""
    return BASE + timedelta(seconds=seconds, minutes=minutes, hours=hours, microseconds=micro)


def _event(event_id: str, event_type: str, when: datetime, data: dict[str, Any], user: str | None) -> Event:
    wire: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type,
        "schema_version": 1,
        "timestamp": when.isoformat(),
        "source": "test",
        "data": data,
    }
    if user is not None:
        wire["user_id"] = user
    return parse_event(wire)


def view(event_id: str, when: datetime, product: str, user: str | None = "u-1", duration: float | None = None) -> Event:
    """A product view; ``duration`` is ``data.session_duration`` in seconds (absent when ``None``)."""
    data: dict[str, Any] = {"product_id": product}
    if duration is not None:
        data["session_duration"] = duration
    return _event(event_id, "product_view", when, data, user)


def order(
    event_id: str, when: datetime, order_id: str, status: str, total: str = "10.00", user: str | None = "u-1"
) -> Event:
    """An order event of one item worth ``total``."""
    data = {
        "order_id": order_id,
        "total_amount": total,
        "items": [{"product_id": "p-1", "quantity": 1, "price": total}],
        "status": status,
    }
    return _event(event_id, "order_event", when, data, user)


def activity(event_id: str, when: datetime, user: str | None = "u-1") -> Event:
    """A user activity (a click): in no metric but the late events."""
    return _event(event_id, "user_activity", when, {"activity_type": "click"}, user)


def unvalidated(event: Event, **data: Any) -> Event:
    """``event`` with these ``data`` fields replaced, unchecked (validation would refuse some of them)."""
    return msgspec.structs.replace(event, data=msgspec.structs.replace(event.data, **data))
