"""The read side of the e-commerce single table: users, products, orders and reviews as entities.

Keys are in :mod:`pipeline.stores.keys`; items become entities in :mod:`pipeline.stores.items`.
Guarantees:

- Reads never write.
- A product is one strongly consistent ``GetItem``. An entity with its children (a user with their
  profile, an order with its lines) is one strongly consistent query of its partition, followed
  page by page (such partitions are small). :class:`~pipeline.stores.errors.NotFoundError` when
  the entity is absent.
- Lists return one :class:`~pipeline.stores.models.Page` of at most ``limit`` (1 to 1000) entities
  per call, its cursor ``LastEvaluatedKey``: by GSI1 or GSI2 eventually consistent (a write just
  acknowledged may be missing), by LSI1 strongly consistent.
- A ``ClientError`` becomes a store error (:func:`pipeline.stores.table.translate`).

Thread-safe: a reader holds only the table helper (botocore clients are thread-safe).
:class:`~pipeline.stores.single_table.SingleTableRepository` is a reader that also writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.stores import keys
from pipeline.stores.attributes import to_value
from pipeline.stores.errors import InvalidEntityError, NotFoundError
from pipeline.stores.items import lines_from, order_from, product_from, review_from, user_from
from pipeline.stores.models import (
    ORDER_STATUSES,
    Order,
    Page,
    Product,
    Review,
    User,
    UserProfile,
    UserWithProfile,
    check_id,
)
from pipeline.stores.table import Table

__all__ = ["SingleTableReader"]


class SingleTableReader:
    """Reads of the single table behind ``table`` (a low-level DynamoDB client and the table's name)."""

    def __init__(self, table: Table) -> None:
        self.table_name = table.name
        self._table = table

    # ------------------------------------------------------------------ users

    def get_user_with_profile(self, user_id: str) -> UserWithProfile:
        """The user and their profile, read consistently in one query. :class:`NotFoundError` if absent."""
        items = self._table.query_all(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": to_value(keys.user_partition(check_id("user_id", user_id)))},
            ConsistentRead=True,
        )
        user: User | None = None
        profile: UserProfile | None = None
        for item in items:
            if item["SK"] == keys.METADATA:
                user = user_from(item)
            elif item["SK"] == keys.PROFILE:
                profile = UserProfile(
                    user_id=item["user_id"],
                    first_name=item.get("first_name"),
                    last_name=item.get("last_name"),
                    phone=item.get("phone"),
                )
        if user is None:
            raise NotFoundError("user", user_id)
        return UserWithProfile(user=user, profile=profile)

    # ------------------------------------------------------------------ products

    def get_product(self, product_id: str) -> Product:
        item = self._table.get(keys.product_key(check_id("product_id", product_id)))
        if item is None:
            raise NotFoundError("product", product_id)
        return product_from(item)

    def get_products_by_category(
        self, category: str, *, limit: int = 50, cursor: Mapping[str, Any] | None = None
    ) -> Page[Product]:
        """Products of a category, by name (GSI1, eventually consistent)."""
        return self._table.page(
            product_from,
            limit,
            cursor,
            IndexName=keys.GSI1,
            KeyConditionExpression="GSI1PK = :pk AND begins_with(GSI1SK, :product)",
            ExpressionAttributeValues={
                ":pk": to_value(keys.category_partition(check_id("category", category))),
                ":product": to_value("PRODUCT#"),
            },
        )

    # ------------------------------------------------------------------ orders

    def get_order_with_items(self, order_id: str) -> Order:
        """The order and its line items, read consistently. :class:`NotFoundError` if absent."""
        items = self._table.query_all(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": to_value(keys.order_partition(check_id("order_id", order_id)))},
            ConsistentRead=True,
        )
        header = next((i for i in items if i["SK"] == keys.METADATA), None)
        if header is None:
            raise NotFoundError("order", order_id)
        lines = lines_from(
            sorted((i for i in items if i["SK"].startswith(keys.LINE_PREFIX)), key=lambda i: i["line_no"])
        )
        return order_from(header, lines)

    def get_user_orders(self, user_id: str, *, limit: int = 50, cursor: Mapping[str, Any] | None = None) -> Page[Order]:
        """A user's orders, newest first (GSI1, eventually consistent)."""
        return self._table.page(
            order_from,
            limit,
            cursor,
            IndexName=keys.GSI1,
            KeyConditionExpression="GSI1PK = :pk AND begins_with(GSI1SK, :order)",
            ExpressionAttributeValues={
                ":pk": to_value(keys.user_orders_partition(check_id("user_id", user_id))),
                ":order": to_value("ORDER#"),
            },
            ScanIndexForward=False,
        )

    def get_orders_by_status(
        self, status: str, *, limit: int = 50, cursor: Mapping[str, Any] | None = None
    ) -> Page[Order]:
        """Orders now in ``status``, oldest status change first (GSI2, eventually consistent)."""
        if status not in ORDER_STATUSES:
            raise InvalidEntityError(f"status: {status!r} is not one of {sorted(ORDER_STATUSES)}")
        return self._table.page(
            order_from,
            limit,
            cursor,
            IndexName=keys.GSI2,
            KeyConditionExpression="GSI2PK = :pk",
            ExpressionAttributeValues={":pk": to_value(keys.status_partition(status))},
        )

    # ------------------------------------------------------------------ reviews

    def get_product_reviews(
        self, product_id: str, *, limit: int = 50, cursor: Mapping[str, Any] | None = None
    ) -> Page[Review]:
        """A product's reviews, newest first (LSI1, strongly consistent)."""
        return self._table.page(
            review_from,
            limit,
            cursor,
            IndexName=keys.LSI1,
            KeyConditionExpression="PK = :pk AND begins_with(LSI1SK, :review)",
            ExpressionAttributeValues={
                ":pk": to_value(keys.product_partition(check_id("product_id", product_id))),
                ":review": to_value(keys.REVIEW_PREFIX),
            },
            ScanIndexForward=False,
            ConsistentRead=True,
        )
