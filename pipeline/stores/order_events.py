"""The ``order_event`` a committed order change produces, in the project's wire format.

Both change-data-capture paths (the table's stream bridge, the SQL outbox) build events here, so an
order looks the same on the stream whichever store holds it.

**Event ids are deterministic**: ``uuid5`` of the order id, the status and the order's version. The
same committed change always yields the same id, so a crash between the store's commit and the
publish, or a re-delivered change record, republishes the *same* event, which the consumer
deduplicates by ``event_id``. Two different changes never share an id: each status change raises the
version.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from pipeline.stores.models import OrderLine

__all__ = ["ORDER_EVENT_NAMESPACE", "order_event_id", "order_event_wire"]

ORDER_EVENT_NAMESPACE: Final = uuid.UUID("5b0f6c1e-8a43-5d8e-9a57-0c3f4e3a7d21")
"""Namespace of order event ids. Changing it changes every id: consumers would count replays twice."""


def order_event_id(order_id: str, status: str, version: int) -> str:
    return str(uuid.uuid5(ORDER_EVENT_NAMESPACE, f"order:{order_id}:{status}:{version}"))


def _rfc3339(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("naive datetime: order events carry aware UTC times only")
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def order_event_wire(
    *,
    order_id: str,
    user_id: str,
    status: str,
    version: int,
    total_amount: Decimal,
    lines: Sequence[OrderLine],
    occurred_at: datetime,
    source: str,
) -> dict[str, Any]:
    """The event as the JSON-ready dict producers write (money as strings, UTC timestamp).

    ``occurred_at`` is when the status took effect in the store; it is the event time the metrics
    bucket by.
    """
    return {
        "event_id": order_event_id(order_id, status, version),
        "event_type": "order_event",
        "event_subtype": f"order_{status}",
        "schema_version": 1,
        "timestamp": _rfc3339(occurred_at),
        "source": source,
        "user_id": user_id,
        "data": {
            "order_id": order_id,
            "total_amount": str(total_amount),
            "items": [
                {"product_id": line.product_id, "quantity": line.quantity, "price": str(line.price)} for line in lines
            ],
            "status": status,
        },
    }
