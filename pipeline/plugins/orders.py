"""Order metrics: hourly and daily order counts and revenue, each (order, status) counted once.

Table ``order_metrics``, key ``(metric_type, time_bucket)`` with ``metric_type`` ``hourly_orders``
(bucket ``YYYY-MM-DD#HH``) or ``daily_orders`` (bucket ``YYYY-MM-DD``), by event time in UTC. Every
counted event adds to both items:

==========  ===================================================================
status      counters added
==========  ===================================================================
created     ``order_count`` 1, ``total_revenue`` total, ``items_sold`` quantities
completed   ``completed_orders`` 1, ``completed_revenue`` total
cancelled   ``cancelled_orders`` 1
==========  ===================================================================

Other statuses count nothing and produce no effects at all.

Guarantees:

- Each ``(order_id, status)`` is counted by exactly one event, its *claimant*: the first in stream
  order. The claimant writes a :class:`PutOnce` row to ``order_claims`` in the same effect list as its
  counters. An event is a duplicate, with no effects, when the context says a *different* event id
  claimed its (order, status) in an earlier batch, or an earlier event of this batch claimed it. A
  claim held by the event's own id is a retry of the same event: it counts again (the writer's
  per-shard watermark keeps its counters exactly-once).
- A completed claimant also emits the fulfilment :class:`Message`, deduplicated by its event id and
  grouped by order id (FIFO per order).
- The effects of event ``i`` depend only on the context and events ``0..i``, so any prefix of the
  batch gets exactly the effects it would get alone (what the processor's partial-failure contract
  needs). Money is :class:`~decimal.Decimal` end to end; message money is its exact decimal text.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from pipeline.events import Event, EventType, OrderData
from pipeline.metrics.effects import Add, Effect, Message, PutOnce
from pipeline.plugins.base import BatchContext
from pipeline.plugins.timefmt import day_of, hour_of, stamp

__all__ = ["COUNTED_STATUSES", "FULFILMENT_QUEUE", "OrderMetricsPlugin", "order_status"]

COUNTED_STATUSES: Final = frozenset({"created", "completed", "cancelled"})
"""The normalised statuses that count; only these are claimed."""
FULFILMENT_QUEUE: Final = "fulfilment"


def order_status(data: OrderData, event_subtype: str | None) -> str:
    """The normalised status that keys claims and picks counters: ``data.status`` lowercased.

    The payload's status decides when it is one of :data:`COUNTED_STATUSES`; otherwise an event of
    subtype ``order_created`` (any case) has status ``created``. The context loader must key its
    claim reads with this same function.
    """
    status = data.status.lower()
    if status not in COUNTED_STATUSES and event_subtype is not None and event_subtype.lower() == "order_created":
        return "created"
    return status


class OrderMetricsPlugin:
    """See the module docstring. Stateless: one instance serves every batch."""

    name: str = "orders"
    version: int = 1
    event_types: frozenset[EventType] = frozenset({EventType.ORDER_EVENT})

    def effects(self, events: Sequence[Event], context: BatchContext) -> list[list[Effect]]:
        """One effect list per event: the claimant's claim, counters and message; ``[]`` otherwise."""
        stored = context.order_claims
        claimed_here: set[tuple[str, str]] = set()
        out: list[list[Effect]] = []
        for event in events:
            data = event.data
            if not isinstance(data, OrderData):
                out.append([])
                continue
            status = order_status(data, event.event_subtype)
            claim = (data.order_id, status)
            holder = stored.get(claim)
            if (
                status not in COUNTED_STATUSES
                or claim in claimed_here
                or (holder is not None and holder != event.event_id)
            ):
                out.append([])
                continue
            claimed_here.add(claim)
            out.append(_claimant_effects(event, data, status))
        return out


def _claimant_effects(event: Event, data: OrderData, status: str) -> list[Effect]:
    when = stamp(event.timestamp)
    total = data.total_amount
    amounts: dict[str, int | Decimal]
    if status == "created":
        amounts = {"order_count": 1, "total_revenue": total, "items_sold": sum(i.quantity for i in data.items)}
    elif status == "completed":
        amounts = {"completed_orders": 1, "completed_revenue": total}
    else:
        amounts = {"cancelled_orders": 1}
    effects: list[Effect] = [
        PutOnce(
            "order_claims",
            (("order_id", data.order_id), ("status", status)),
            {"order_id": data.order_id, "status": status, "event_id": event.event_id, "claimed_at": when},
        ),
        Add("order_metrics", (("metric_type", "hourly_orders"), ("time_bucket", hour_of(when))), amounts),
        Add("order_metrics", (("metric_type", "daily_orders"), ("time_bucket", day_of(when))), dict(amounts)),
    ]
    if status == "completed":
        body = {
            "order_id": data.order_id,
            "user_id": event.user_id,
            "total_amount": str(total),
            "items": [{"product_id": i.product_id, "quantity": i.quantity, "price": str(i.price)} for i in data.items],
            "event_id": event.event_id,
            "completed_at": when,
        }
        effects.append(Message(FULFILMENT_QUEUE, body, dedup_id=event.event_id, group_id=data.order_id))
    return effects
