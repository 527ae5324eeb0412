"""Order metrics: every order counted once, and every status an order reaches counted once.

Table ``order_metrics``, key ``(metric_type, time_bucket)``, buckets by the event time in UTC:

=======================  ==========================  ==========================================================
metric_type              time_bucket                 counters
=======================  ==========================  ==========================================================
``hourly_orders``        ``YYYY-MM-DD#HH``           ``order_count``, ``total_revenue``, ``items_sold`` (an
``daily_orders``         ``YYYY-MM-DD``              order's first event); ``completed_orders``,
                                                     ``completed_revenue`` (its completion);
                                                     ``cancelled_orders`` (its cancellation)
``hourly_order_status``  ``YYYY-MM-DD#HH#<status>``  ``orders``: orders that reached ``<status>`` that hour
``daily_order_status``   ``YYYY-MM-DD#<status>``     ``orders``: the same per day
=======================  ==========================  ==========================================================

Statuses are normalised (:func:`normalise_status`): trimmed, lowercased, and these synonyms folded:

==============  ============================================
status          written as
==============  ============================================
``completed``   complete, completed, fulfilled (any case)
``cancelled``   canceled, cancelled (any case)
==============  ============================================

Every other status (``pending``, ``placed``, ``created``, ``shipped``, ``refunded``, ...) is counted
under its own name in the status items, so no valid order event disappears.

Guarantees:

- **An order counts once**, at the first event of that ``order_id`` the pipeline counts, whatever its
  status: ``order_count`` 1, ``total_revenue`` its ``total_amount``, ``items_sold`` its quantities,
  in the hour and day of that event.
- **A status counts once per order**: the first event of an ``(order_id, status)`` adds 1 to that
  status's items (and, for completions and cancellations, to the main counters). A later event of
  the same order and status, under another event id, is a duplicate: no effects.
- "First" is decided by *claims*: the counting event writes a :class:`PutOnce` row to
  ``order_claims`` (key ``(order_id, claim)``, claim ``order`` or ``status=<status>``) in the same
  effect list as its counters. An event is a duplicate when the context says a *different* event id
  holds the claim, or an earlier event of this batch took it. A claim held by the event's own id is
  a retry of the same event: it counts again and the writer's per-shard watermark keeps its counters
  exactly-once.
- A completion also sends the fulfilment :class:`Message`, deduplicated by its event id and grouped
  by order id (FIFO per order).
- Pure and prefix-stable: the effects of event ``i`` depend only on the context and events ``0..i``.
  Money is :class:`~decimal.Decimal` end to end; message money is its exact decimal text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Final

from pipeline.events import Event, EventType, OrderData
from pipeline.metrics.effects import Add, Effect, ItemKey, Message, PutOnce
from pipeline.plugins.base import BatchContext, Read
from pipeline.plugins.timefmt import day_of, hour_of, stamp

__all__ = [
    "CANCELLED",
    "COMPLETED",
    "FULFILMENT_QUEUE",
    "ORDER_CLAIM",
    "STATUS_SYNONYMS",
    "OrderMetricsPlugin",
    "claim_key",
    "normalise_status",
    "status_claim",
]

FULFILMENT_QUEUE: Final = "fulfilment"
COMPLETED: Final = "completed"
CANCELLED: Final = "cancelled"
ORDER_CLAIM: Final = "order"
STATUS_SYNONYMS: Final = {
    "complete": COMPLETED,
    "completed": COMPLETED,
    "fulfilled": COMPLETED,
    "canceled": CANCELLED,
    "cancelled": CANCELLED,
}
"""Lowercased status -> the name it is counted under; any status not listed is counted as itself."""


def normalise_status(status: str) -> str:
    """The name a status is counted under: trimmed, lowercased, synonyms folded."""
    folded = status.strip().lower()
    return STATUS_SYNONYMS.get(folded, folded)


def status_claim(status: str) -> str:
    """The claim of a normalised status: ``status=<status>``."""
    return f"status={status}"


def claim_key(order_id: str, claim: str) -> ItemKey:
    return (("order_id", order_id), ("claim", claim))


class OrderMetricsPlugin:
    """See the module docstring. Stateless: one instance serves every batch."""

    name: str = "orders"
    version: int = 2
    event_types: frozenset[EventType] = frozenset({EventType.ORDER_EVENT})

    def reads(self, events: Sequence[Event]) -> Iterable[Read]:
        """The claims of every order and (order, status) in the batch, read fresh."""
        for event in events:
            data = event.data
            if isinstance(data, OrderData):
                yield Read("order_claims", claim_key(data.order_id, ORDER_CLAIM))
                yield Read("order_claims", claim_key(data.order_id, status_claim(normalise_status(data.status))))

    def effects(self, events: Sequence[Event], context: BatchContext) -> list[list[Effect]]:
        """One effect list per event: its claims, counters and message; ``[]`` for a duplicate."""
        claimed_here: set[ItemKey] = set()
        out: list[list[Effect]] = []
        for event in events:
            data = event.data
            if not isinstance(data, OrderData):
                out.append([])
                continue
            when = stamp(event.timestamp)
            status = normalise_status(data.status)
            effects: list[Effect] = []
            for claim in (ORDER_CLAIM, status_claim(status)):
                key = claim_key(data.order_id, claim)
                stored = context.item("order_claims", key)
                if key in claimed_here or (stored is not None and stored.get("event_id") != event.event_id):
                    continue  # a different event counted it: in this batch, or earlier
                claimed_here.add(key)
                row = {"order_id": data.order_id, "claim": claim, "event_id": event.event_id, "claimed_at": when}
                effects.append(PutOnce("order_claims", key, row))
                effects.extend(_counted(event, data, status, when, claim == ORDER_CLAIM))
            out.append(effects)
        return out


def _counted(event: Event, data: OrderData, status: str, when: str, is_order: bool) -> list[Effect]:
    """The counters (and message) of one claim: the order itself, or one status of it."""
    hour, day = hour_of(when), day_of(when)
    if is_order:
        amounts: dict[str, int | Decimal] = {
            "order_count": 1,
            "total_revenue": data.total_amount,
            "items_sold": sum(item.quantity for item in data.items),
        }
        return _buckets(hour, day, amounts)
    effects: list[Effect] = [
        Add(
            "order_metrics",
            (("metric_type", "hourly_order_status"), ("time_bucket", f"{hour}#{status}")),
            {"orders": 1},
        ),
        Add(
            "order_metrics", (("metric_type", "daily_order_status"), ("time_bucket", f"{day}#{status}")), {"orders": 1}
        ),
    ]
    if status == COMPLETED:
        effects += _buckets(hour, day, {"completed_orders": 1, "completed_revenue": data.total_amount})
        body = {
            "order_id": data.order_id,
            "user_id": event.user_id,
            "total_amount": str(data.total_amount),
            "items": [{"product_id": i.product_id, "quantity": i.quantity, "price": str(i.price)} for i in data.items],
            "event_id": event.event_id,
            "completed_at": when,
        }
        effects.append(Message(FULFILMENT_QUEUE, body, dedup_id=event.event_id, group_id=data.order_id))
    elif status == CANCELLED:
        effects += _buckets(hour, day, {"cancelled_orders": 1})
    return effects


def _buckets(hour: str, day: str, amounts: dict[str, int | Decimal]) -> list[Effect]:
    return [
        Add("order_metrics", (("metric_type", "hourly_orders"), ("time_bucket", hour)), amounts),
        Add("order_metrics", (("metric_type", "daily_orders"), ("time_bucket", day)), dict(amounts)),
    ]
