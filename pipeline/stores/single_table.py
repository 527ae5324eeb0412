"""The e-commerce single table: users, products, orders and reviews in one DynamoDB table.

Keys are in :mod:`pipeline.stores.keys`. Guarantees:

- **Every multi-item write is one ``TransactWriteItems``** (all or nothing), never ``batch_writer``:
  ``create_user`` (user, profile, email claim), ``create_order`` (user check, order, its lines, each
  product's stock decrement), ``add_review`` (review, product rating totals, user check). When a
  transaction is cancelled nothing was written, and the cancellation reasons become typed errors:
  :class:`DuplicateEmailError`, :class:`InsufficientStockError` naming the product (with the stock
  found), :class:`PriceChangedError`, :class:`NotFoundError`, ...
- **Uniqueness is enforced by conditions**: an email is claimed by an ``EMAIL#<email>`` item written
  with ``attribute_not_exists``, in the same transaction as the user, so two concurrent sign-ups with
  one email make exactly one user. Ids (users, products, orders, reviews per user and product) are
  insert-if-absent too.
- **Stock never goes negative**: each line's decrement is conditional on ``stock >= quantity`` (and on
  the price the order was priced at), inside the order's transaction.
- **Order size**: one transaction holds at most 100 actions; an order takes ``2 * lines + 2`` (user
  check, order, a line item and a stock update per line), so an order holds at most
  :data:`MAX_ORDER_LINES` (49) distinct products. Bigger orders are refused with
  :class:`OrderTooLargeError` before anything is sent: splitting one order over several transactions
  would give up atomicity (part of an order placed, part refused). A product appears once per order.
- **Status changes** are one conditional ``UpdateItem``: the status, ``GSI2PK``, ``GSI2SK``,
  ``updated_at`` and ``version`` move together, only if the current status is the expected one
  (:class:`OrderStatusConflictError` otherwise). Allowed moves: :data:`~pipeline.stores.models.TRANSITIONS`.
- **Retries**: botocore retries throttling and network errors with the same request (and the same
  ``ClientRequestToken``, which makes a resent transaction idempotent for 10 minutes). A transaction
  cancelled by a *conflicting concurrent transaction* wrote nothing and is retried here with a new
  token, a bounded number of times, then :class:`StoreUnavailableError`.
- Queries return a :class:`~pipeline.stores.models.Page` (``LastEvaluatedKey`` as its cursor).
- The order item carries its lines too (a list attribute), so each change of the order on the
  table's stream holds the whole order: the stream bridge (:mod:`pipeline.stores.cdc`) publishes
  ``order_event`` s from it without reading the table.

Thread-safe: the repository holds only the client (botocore clients are thread-safe) and settings.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from botocore.exceptions import ClientError

from pipeline.stores import keys
from pipeline.stores.attributes import from_item, to_item
from pipeline.stores.errors import (
    DuplicateEmailError,
    DuplicateOrderError,
    DuplicateProductError,
    DuplicateReviewError,
    DuplicateUserError,
    InsufficientStockError,
    InvalidEntityError,
    NotFoundError,
    OrderStatusConflictError,
    OrderTooLargeError,
    PriceChangedError,
    StoreError,
)
from pipeline.stores.items import order_from, order_item
from pipeline.stores.models import (
    INITIAL_STATUS,
    Clock,
    Order,
    OrderLine,
    Product,
    Review,
    User,
    UserProfile,
    check_id,
    check_transition,
    money,
    normalise_email,
    order_total,
    utc_now,
)
from pipeline.stores.single_table_reads import SingleTableReader
from pipeline.stores.table import MAX_TRANSACTION_ITEMS, OnFailure, Table, translate

__all__ = ["MAX_ORDER_LINES", "MAX_TRANSACTION_ITEMS", "SingleTableRepository"]

MAX_ORDER_LINES: Final = (MAX_TRANSACTION_ITEMS - 2) // 2
"""49: a user check and the order item, then a line item and a stock update per product."""


def _new_id() -> str:
    return str(uuid.uuid4())


class SingleTableRepository(SingleTableReader):
    """Operations on the single table ``table_name`` through a DynamoDB ``client`` (low level, botocore).

    The writes are here; the reads are those of :class:`~pipeline.stores.single_table_reads.SingleTableReader`.
    ``clock`` and ``new_id`` are injectable (tests); both are called once per created entity.
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = _new_id,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(Table(client, table_name, sleep=sleep))
        self._client = client
        self._clock = clock
        self._new_id = new_id

    # ------------------------------------------------------------------ users

    def create_user(
        self,
        email: str,
        name: str,
        *,
        user_id: str | None = None,
        user_segment: str = "standard",
        profile: UserProfile | None = None,
    ) -> User:
        """Create a user, their profile and the claim on their email in one transaction.

        Raises :class:`DuplicateEmailError` (the email, case-insensitively, belongs to someone) or
        :class:`DuplicateUserError`; in both cases nothing was written.
        """
        normal = normalise_email(email)
        uid = check_id("user_id", user_id if user_id is not None else self._new_id())
        if not name or not user_segment:
            raise InvalidEntityError("name and user_segment are required")
        now = self._clock()
        user = User(user_id=uid, email=normal, name=name, user_segment=user_segment, created_at=now)
        stamp = keys.time_key(now)
        user_item = {
            **keys.user_key(uid),
            "entity_type": "USER",
            "user_id": uid,
            "email": normal,
            "name": name,
            "user_segment": user_segment,
            "created_at": stamp,
        }
        given = profile or UserProfile(user_id=uid)
        profile_item = {
            **keys.user_profile_key(uid),
            "entity_type": "USER_PROFILE",
            "user_id": uid,
            **{k: v for k in ("first_name", "last_name", "phone") if (v := getattr(given, k)) is not None},
        }
        claim_item = {**keys.email_key(normal), "entity_type": "EMAIL", "user_id": uid, "created_at": stamp}
        self._table.transact(
            [
                (self._table.put(user_item), lambda _old: DuplicateUserError(uid)),
                (self._table.put(profile_item), lambda _old: DuplicateUserError(uid)),
                (self._table.put(claim_item), lambda _old: DuplicateEmailError(normal)),
            ]
        )
        return user

    # ------------------------------------------------------------------ products

    def create_product(
        self, name: str, category: str, price: Decimal, stock: int, *, product_id: str | None = None
    ) -> Product:
        """Create a product (insert-if-absent: :class:`DuplicateProductError` if the id is taken)."""
        pid = check_id("product_id", product_id if product_id is not None else self._new_id())
        check_id("category", category)
        if not name or isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
            raise InvalidEntityError("a product needs a name and a non-negative integer stock")
        product = Product(pid, name, category, money(price, "price"), stock, self._clock())
        item = {
            **keys.product_key(pid),
            "entity_type": "PRODUCT",
            "product_id": pid,
            "name": name,
            "category": category,
            "price": product.price,
            "stock": stock,
            "review_count": 0,
            "rating_total": 0,
            "created_at": keys.time_key(product.created_at),
            "GSI1PK": keys.category_partition(category),
            "GSI1SK": f"PRODUCT#{name}#{pid}",
        }
        self._table.transact([(self._table.put(item), lambda _old: DuplicateProductError(pid))])
        return product

    # ------------------------------------------------------------------ orders

    def create_order(self, user_id: str, lines: Sequence[OrderLine], *, order_id: str | None = None) -> Order:
        """Place an order: the order, its lines and every stock decrement, in one transaction.

        Each line's ``price`` must be the product's current price. Raises, with nothing written:
        :class:`InsufficientStockError` (naming the first product short of stock, with the stock
        found), :class:`PriceChangedError`, :class:`NotFoundError` (user or product),
        :class:`OrderTooLargeError` (more than :data:`MAX_ORDER_LINES` lines),
        :class:`DuplicateOrderError` (the order id exists: a retried create).
        """
        uid = check_id("user_id", user_id)
        oid = check_id("order_id", order_id if order_id is not None else self._new_id())
        lines = tuple(lines)
        if not lines:
            raise InvalidEntityError("an order needs at least one line")
        if len(lines) > MAX_ORDER_LINES:
            raise OrderTooLargeError(len(lines), MAX_ORDER_LINES)
        if len({line.product_id for line in lines}) != len(lines):
            raise InvalidEntityError("a product appears once per order: merge its lines")
        now = self._clock()
        stamp = keys.time_key(now)
        order = Order(oid, uid, INITIAL_STATUS, order_total(lines), lines, now, now, 1)
        actions: list[tuple[dict[str, Any], OnFailure]] = [
            (self._table.exists(keys.user_key(uid)), lambda _old: NotFoundError("user", uid)),
            (self._table.put(order_item(order)), lambda _old: DuplicateOrderError(oid)),
        ]
        for line_no, line in enumerate(lines):
            line_item = {
                **keys.order_line_key(oid, line.product_id),
                "entity_type": "ORDER_LINE",
                "order_id": oid,
                "line_no": line_no,
                "product_id": line.product_id,
                "quantity": line.quantity,
                "price": line.price,
                "created_at": stamp,
            }
            actions.append((self._table.put(line_item), lambda _old: DuplicateOrderError(oid)))
            decrement = {
                "Update": {
                    "TableName": self.table_name,
                    "Key": to_item(keys.product_key(line.product_id)),
                    "UpdateExpression": "SET stock = stock - :q, updated_at = :now",
                    "ConditionExpression": "attribute_exists(PK) AND stock >= :q AND price = :price",
                    "ExpressionAttributeValues": to_item({":q": line.quantity, ":price": line.price, ":now": stamp}),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            actions.append((decrement, _stock_failure(line)))
        self._table.transact(actions)
        return order

    def update_order_status(self, order_id: str, new_status: str, *, expected_status: str) -> Order:
        """Move an order from ``expected_status`` to ``new_status``; both GSI2 keys move with it.

        Raises :class:`OrderStatusConflictError` (the order is not in ``expected_status``, e.g. a
        concurrent change won), :class:`NotFoundError`, :class:`InvalidEntityError` (a move that
        :data:`~pipeline.stores.models.TRANSITIONS` does not allow). Returns the order as stored.
        """
        oid = check_id("order_id", order_id)
        check_transition(expected_status, new_status)
        now = self._clock()
        stamp = keys.time_key(now)
        try:
            response = self._client.update_item(
                TableName=self.table_name,
                Key=to_item(keys.order_key(oid)),
                UpdateExpression=(
                    "SET #status = :new, GSI2PK = :gsi2pk, GSI2SK = :gsi2sk, updated_at = :now, "
                    "version = version + :one"
                ),
                ConditionExpression="attribute_exists(PK) AND #status = :expected",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_item(
                    {
                        ":new": new_status,
                        ":expected": expected_status,
                        ":gsi2pk": keys.status_partition(new_status),
                        ":gsi2sk": f"{stamp}#{oid}",
                        ":now": stamp,
                        ":one": 1,
                    }
                ),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                failed: dict[str, Any] = dict(exc.response)
                old: Mapping[str, Any] | None = failed.get("Item")
                if not old:
                    raise NotFoundError("order", oid) from exc
                raise OrderStatusConflictError(oid, expected_status, from_item(old).get("status")) from exc
            raise translate(exc) from exc
        return order_from(from_item(response["Attributes"]))

    # ------------------------------------------------------------------ reviews

    def add_review(self, product_id: str, user_id: str, rating: int, comment: str = "") -> Review:
        """Add a user's review of a product and add it to the product's rating totals, in one transaction.

        One review per user and product (:class:`DuplicateReviewError`); the user and the product must
        exist (:class:`NotFoundError`). ``rating`` is 1 to 5.
        """
        pid = check_id("product_id", product_id)
        uid = check_id("user_id", user_id)
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise InvalidEntityError(f"rating: an integer from 1 to 5, not {rating!r}")
        now = self._clock()
        stamp = keys.time_key(now)
        review = Review(pid, uid, rating, comment, now)
        item = {
            **keys.review_key(pid, uid),
            "entity_type": "REVIEW",
            "product_id": pid,
            "user_id": uid,
            "rating": rating,
            "comment": comment,
            "created_at": stamp,
            "LSI1SK": f"{keys.REVIEW_PREFIX}{stamp}#{uid}",
        }
        self._table.transact(
            [
                (self._table.put(item), lambda _old: DuplicateReviewError(pid, uid)),
                (
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": to_item(keys.product_key(pid)),
                            "UpdateExpression": "ADD review_count :one, rating_total :rating",
                            "ConditionExpression": "attribute_exists(PK)",
                            "ExpressionAttributeValues": to_item({":one": 1, ":rating": rating}),
                        }
                    },
                    lambda _old: NotFoundError("product", pid),
                ),
                (self._table.exists(keys.user_key(uid)), lambda _old: NotFoundError("user", uid)),
            ]
        )
        return review


def _stock_failure(line: OrderLine) -> OnFailure:
    def failure(old: Mapping[str, Any] | None) -> StoreError:
        if old is None:
            return NotFoundError("product", line.product_id)
        if Decimal(old["price"]) != line.price:
            return PriceChangedError(line.product_id, line.price, old["price"])
        return InsufficientStockError(line.product_id, line.quantity, int(old["stock"]))

    return failure
