"""Entities <-> single-table items (Python values; :mod:`pipeline.stores.attributes` does the wire)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pipeline.stores import keys
from pipeline.stores.models import Order, OrderLine, Product, Review, User

__all__ = ["order_from", "order_item", "parse_time", "product_from", "review_from", "user_from"]


def parse_time(text: str) -> datetime:
    """A :func:`~pipeline.stores.keys.time_key` string back to an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def order_item(order: Order) -> dict[str, object]:
    """The order item: the order, its lines (denormalised, for the stream) and its GSI1/GSI2 keys."""
    created = keys.time_key(order.created_at)
    updated = keys.time_key(order.updated_at)
    return {
        **keys.order_key(order.order_id),
        "entity_type": "ORDER",
        "order_id": order.order_id,
        "user_id": order.user_id,
        "status": order.status,
        "total_amount": order.total_amount,
        "lines": [{"product_id": ln.product_id, "quantity": ln.quantity, "price": ln.price} for ln in order.lines],
        "created_at": created,
        "updated_at": updated,
        "version": order.version,
        "GSI1PK": keys.user_orders_partition(order.user_id),
        "GSI1SK": f"ORDER#{created}#{order.order_id}",
        "GSI2PK": keys.status_partition(order.status),
        "GSI2SK": f"{updated}#{order.order_id}",
    }


def lines_from(values: list[Mapping[str, Any]]) -> tuple[OrderLine, ...]:
    return tuple(OrderLine(v["product_id"], int(v["quantity"]), Decimal(v["price"])) for v in values)


def order_from(item: Mapping[str, Any], lines: tuple[OrderLine, ...] | None = None) -> Order:
    return Order(
        order_id=item["order_id"],
        user_id=item["user_id"],
        status=item["status"],
        total_amount=Decimal(item["total_amount"]),
        lines=lines if lines is not None else lines_from(item["lines"]),
        created_at=parse_time(item["created_at"]),
        updated_at=parse_time(item["updated_at"]),
        version=int(item["version"]),
    )


def user_from(item: Mapping[str, Any]) -> User:
    return User(item["user_id"], item["email"], item["name"], item["user_segment"], parse_time(item["created_at"]))


def product_from(item: Mapping[str, Any]) -> Product:
    return Product(
        item["product_id"],
        item["name"],
        item["category"],
        Decimal(item["price"]),
        int(item["stock"]),
        parse_time(item["created_at"]),
    )


def review_from(item: Mapping[str, Any]) -> Review:
    created = parse_time(item["created_at"])
    return Review(item["product_id"], item["user_id"], int(item["rating"]), item.get("comment", ""), created)
