"""What the entity stores committed, read back as the order events change data capture must publish.

The demo's oracle for orders: the metrics must count exactly the orders the stores hold, whatever the
input said and whichever orders were refused. These functions read the stores' own records, not what
the demo meant to do, and build the events with the event model directly (the event ids are the
CDC contract's, :func:`~pipeline.stores.order_events.order_event_id`); no CDC or plugin code runs here.

- the single table keeps an order's status, its version, when it was created and when its status last
  changed: an order with version 1 is one ``created`` event; with version 2, ``created`` then its
  status at ``updated_at``. A longer history is not recoverable from the item, and raises
  :class:`ValueError` (the demo moves an order at most once);
- the SQL store keeps every change (``order_status_changes``): one event per row.

:func:`order_totals` sums what the metrics' ``daily_orders`` and ``hourly_orders`` items counted, to
say in one line that each committed order was counted once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pipeline.events import SCHEMA_VERSION, Event, OrderData, OrderEvent, OrderItem
from pipeline.stores.attributes import from_item
from pipeline.stores.items import order_from
from pipeline.stores.models import Order, OrderLine
from pipeline.stores.order_events import order_event_id
from pipeline.stores.sql.backend import SqlBackend

__all__ = ["OrderTotals", "committed_events", "order_totals", "single_table_orders", "sql_order_changes"]


def _event(order: Order, status: str, version: int, when: datetime, source: str) -> Event:
    items = tuple(OrderItem(product_id=ln.product_id, quantity=ln.quantity, price=ln.price) for ln in order.lines)
    return OrderEvent(
        event_id=order_event_id(order.order_id, status, version),
        event_subtype=f"order_{status}",
        schema_version=SCHEMA_VERSION,
        timestamp=when,
        source=source,
        user_id=order.user_id,
        data=OrderData(order_id=order.order_id, total_amount=order.total_amount, items=items, status=status),
    )


def single_table_orders(dynamodb: Any, table_name: str) -> list[Order]:
    """Every order item of the single table (a consistent scan filtered on ``entity_type``)."""
    orders = []
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table_name,
        ConsistentRead=True,
        FilterExpression="entity_type = :order",
        ExpressionAttributeValues={":order": {"S": "ORDER"}},
    )
    for page in pages:
        orders += [order_from(from_item(raw)) for raw in page["Items"]]
    return orders


def _single_table_events(orders: Iterable[Order], source: str) -> list[Event]:
    events = []
    for order in orders:
        if order.version > 2:
            raise ValueError(f"order {order.order_id} changed {order.version - 1} times: its history is not stored")
        events.append(_event(order, "created", 1, order.created_at, source))
        if order.version == 2:
            events.append(_event(order, order.status, 2, order.updated_at, source))
    return events


def sql_order_changes(backend: SqlBackend, source: str) -> list[Event]:
    """One event per row of ``order_status_changes``, with the order's user, total and lines."""
    rows = backend.execute_statement(
        "SELECT c.order_id, c.version, c.status, c.changed_at, o.user_id, o.total_amount, o.created_at "
        "FROM order_status_changes AS c JOIN orders AS o USING (order_id) ORDER BY c.order_id, c.version"
    ).rows
    lines: dict[str, list[OrderLine]] = {}
    for line in backend.execute_statement(
        "SELECT order_id, product_id, quantity, price FROM order_items ORDER BY order_id, line_no"
    ).rows:
        lines.setdefault(line["order_id"], []).append(OrderLine(line["product_id"], line["quantity"], line["price"]))
    events = []
    for row in rows:
        order = Order(
            order_id=row["order_id"],
            user_id=row["user_id"],
            status=row["status"],
            total_amount=row["total_amount"],
            lines=tuple(lines.get(row["order_id"], ())),
            created_at=row["created_at"],
            updated_at=row["changed_at"],
            version=row["version"],
        )
        events.append(_event(order, row["status"], row["version"], row["changed_at"], source))
    return events


def committed_events(
    single_table: Iterable[Order], sql: Iterable[Event] = (), *, single_table_source: str = "stores.single_table"
) -> list[Event]:
    """The order events of both stores, in event-time order (an order's creation before its changes)."""
    events = _single_table_events(single_table, single_table_source) + list(sql)
    return sorted(events, key=lambda e: (e.timestamp, e.event_subtype != "order_created"))


@dataclass(frozen=True, slots=True)
class OrderTotals:
    """Orders counted and their revenue, summed over every daily and every hourly bucket."""

    daily_orders: int
    daily_revenue: Decimal
    hourly_orders: int
    hourly_revenue: Decimal


def order_totals(order_metrics: Mapping[Any, Mapping[str, Any]]) -> OrderTotals:
    """Sum ``order_count`` and ``total_revenue`` of the ``daily_orders`` and ``hourly_orders`` items of
    ``order_metrics`` (a scanned table: item key -> item)."""
    counts = {"daily_orders": 0, "hourly_orders": 0}
    revenue = {"daily_orders": Decimal(0), "hourly_orders": Decimal(0)}
    for item in order_metrics.values():
        kind = item.get("metric_type")
        if kind in counts:
            counts[kind] += int(item.get("order_count", 0))
            revenue[kind] += Decimal(item.get("total_revenue", 0))
    daily, hourly = "daily_orders", "hourly_orders"
    return OrderTotals(counts[daily], revenue[daily], counts[hourly], revenue[hourly])
