"""The source design's SQL operations on Aurora PostgreSQL (or any PostgreSQL), through one backend.

Guarantees:

- ``create_user`` inserts the user and the profile in one transaction; emails are unique
  case-insensitively by a unique index, so concurrent sign-ups with one email make exactly one user
  and the others get :class:`DuplicateEmailError`.
- ``create_order_with_items`` is one transaction: the order, then for each line (in product-id
  order, so two orders never wait on each other's rows in opposite orders) a conditional decrement
  ``UPDATE products SET stock = stock - :q WHERE product_id = :p AND stock >= :q AND price = :price``
  whose affected-row count is **checked**: zero rows rolls the whole order back with
  :class:`InsufficientStockError` naming the product (or :class:`PriceChangedError` /
  :class:`NotFoundError`, told apart by reading the row). Under READ COMMITTED the row lock makes
  concurrent decrements re-check ``stock >= :q`` against the committed stock: never oversold. Then
  the items (one batch), the status change row and the outbox row, in the same transaction.
- ``update_order_status`` changes the status only from the expected one (a conditional ``UPDATE``,
  zero rows -> :class:`OrderStatusConflictError` or :class:`NotFoundError`), raises the version,
  records the change and writes its outbox row, in one transaction.
- Every committed order change has exactly one outbox row whose event id is deterministic
  (:func:`~pipeline.stores.order_events.order_event_id`); the relay (:mod:`.outbox`) publishes it.
- ``get_analytics_data`` counts each order status at the time the order entered it (UTC days), the
  same way the consumer's ``daily_orders`` metrics count the order events.

Any error inside a transaction rolls it back (the backend's contract); nothing is half-written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

from pipeline.stores.errors import (
    DuplicateEmailError,
    DuplicateOrderError,
    DuplicateProductError,
    DuplicateUserError,
    InsufficientStockError,
    InvalidEntityError,
    NotFoundError,
    OrderStatusConflictError,
    PriceChangedError,
    SqlError,
)
from pipeline.stores.models import (
    INITIAL_STATUS,
    Clock,
    Order,
    OrderLine,
    Product,
    User,
    UserProfile,
    UserWithProfile,
    check_id,
    check_transition,
    money,
    normalise_email,
    order_total,
    utc_now,
)
from pipeline.stores.order_events import order_event_wire
from pipeline.stores.sql.backend import Json, Params, SqlBackend, SqlResult, SqlTransaction

__all__ = ["EVENT_SOURCE", "AuroraRepository", "DailyAnalytics"]

T = TypeVar("T")
EVENT_SOURCE: Final = "stores.aurora"
_UNIQUE_VIOLATION: Final = "23505"
_FOREIGN_KEY_VIOLATION: Final = "23503"

_ANALYTICS: Final = """
SELECT (c.changed_at AT TIME ZONE 'UTC')::date AS day,
       count(*) FILTER (WHERE c.status = 'created') AS order_count,
       coalesce(sum(o.total_amount) FILTER (WHERE c.status = 'created'), 0) AS total_revenue,
       coalesce(sum(i.items) FILTER (WHERE c.status = 'created'), 0)::bigint AS items_sold,
       count(DISTINCT o.user_id) FILTER (WHERE c.status = 'created') AS customers,
       count(*) FILTER (WHERE c.status = 'completed') AS completed_orders,
       coalesce(sum(o.total_amount) FILTER (WHERE c.status = 'completed'), 0) AS completed_revenue,
       count(*) FILTER (WHERE c.status = 'cancelled') AS cancelled_orders
FROM order_status_changes AS c
JOIN orders AS o ON o.order_id = c.order_id
CROSS JOIN LATERAL (SELECT sum(quantity) AS items FROM order_items WHERE order_id = c.order_id) AS i
WHERE c.changed_at >= :since AND c.changed_at < :until
GROUP BY day
ORDER BY day
"""


@dataclass(frozen=True, slots=True)
class DailyAnalytics:
    """One UTC day of orders. Created figures count orders placed that day; completed and cancelled
    figures count orders that reached that status that day (whenever they were placed)."""

    day: date
    order_count: int
    total_revenue: Decimal
    items_sold: int
    customers: int
    completed_orders: int
    completed_revenue: Decimal
    cancelled_orders: int

    @property
    def average_order_value(self) -> Decimal:
        """``total_revenue / order_count``, exact to the cent, rounded half-even; 0 without orders."""
        if not self.order_count:
            return Decimal(0)
        return (self.total_revenue / self.order_count).quantize(Decimal("0.01"))


class AuroraRepository:
    """The store's operations over ``backend`` (:class:`DataApiBackend` in AWS, :class:`PostgresBackend`
    locally). ``clock`` and ``new_id`` are injectable. Thread-safe if the backend is (both are)."""

    def __init__(self, backend: SqlBackend, *, clock: Clock = utc_now, new_id: Callable[[], str] | None = None) -> None:
        self.backend = backend
        self._clock = clock
        self._new_id = new_id or (lambda: str(uuid.uuid4()))

    # ------------------------------------------------------------------ the backend, as the source design exposes it

    def execute_statement(self, sql: str, params: Params | None = None) -> SqlResult:
        return self.backend.execute_statement(sql, params)

    def batch_execute_statement(self, sql: str, param_sets: Sequence[Params]) -> None:
        self.backend.batch_execute_statement(sql, param_sets)

    def execute_transaction(self, work: Callable[[SqlTransaction], T]) -> T:
        return self.backend.execute_transaction(work)

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
        """User and profile in one transaction. :class:`DuplicateEmailError` / :class:`DuplicateUserError`."""
        normal = normalise_email(email)
        uid = check_id("user_id", user_id if user_id is not None else self._new_id())
        if not name or not user_segment:
            raise InvalidEntityError("name and user_segment are required")
        user = User(uid, normal, name, user_segment, self._clock())
        given = profile or UserProfile(uid)

        def work(tx: SqlTransaction) -> None:
            tx.execute_statement(
                "INSERT INTO users (user_id, email, name, user_segment, created_at) "
                "VALUES (:user_id, :email, :name, :user_segment, :created_at)",
                {
                    "user_id": uid,
                    "email": normal,
                    "name": name,
                    "user_segment": user_segment,
                    "created_at": user.created_at,
                },
            )
            tx.execute_statement(
                "INSERT INTO user_profiles (user_id, first_name, last_name, phone) "
                "VALUES (:user_id, :first_name, :last_name, :phone)",
                {"user_id": uid, "first_name": given.first_name, "last_name": given.last_name, "phone": given.phone},
            )

        try:
            self.backend.execute_transaction(work)
        except SqlError as exc:
            if exc.code == _UNIQUE_VIOLATION and exc.constraint == "users_email_key":
                raise DuplicateEmailError(normal) from exc
            if exc.code == _UNIQUE_VIOLATION and exc.constraint == "users_pkey":
                raise DuplicateUserError(uid) from exc
            raise
        return user

    def get_user_with_profile(self, user_id: str) -> UserWithProfile:
        row = self.backend.execute_statement(
            "SELECT u.user_id, u.email, u.name, u.user_segment, u.created_at, "
            "p.user_id AS profile_user_id, p.first_name, p.last_name, p.phone "
            "FROM users AS u LEFT JOIN user_profiles AS p ON p.user_id = u.user_id WHERE u.user_id = :user_id",
            {"user_id": check_id("user_id", user_id)},
        ).one()
        if row is None:
            raise NotFoundError("user", user_id)
        user = User(row["user_id"], row["email"], row["name"], row["user_segment"], row["created_at"])
        profile = None
        if row["profile_user_id"] is not None:
            profile = UserProfile(row["user_id"], row["first_name"], row["last_name"], row["phone"])
        return UserWithProfile(user, profile)

    # ------------------------------------------------------------------ products

    def create_product(
        self, name: str, category: str, price: Decimal, stock: int, *, product_id: str | None = None
    ) -> Product:
        pid = check_id("product_id", product_id if product_id is not None else self._new_id())
        if not name or isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
            raise InvalidEntityError("a product needs a name and a non-negative integer stock")
        product = Product(pid, name, check_id("category", category), money(price, "price"), stock, self._clock())
        try:
            self.backend.execute_statement(
                "INSERT INTO products (product_id, name, category, price, stock, created_at) "
                "VALUES (:product_id, :name, :category, :price, :stock, :created_at)",
                {
                    "product_id": pid,
                    "name": name,
                    "category": category,
                    "price": product.price,
                    "stock": stock,
                    "created_at": product.created_at,
                },
            )
        except SqlError as exc:
            if exc.code == _UNIQUE_VIOLATION:
                raise DuplicateProductError(pid) from exc
            raise
        return product

    def get_product(self, product_id: str) -> Product:
        row = self.backend.execute_statement(
            "SELECT product_id, name, category, price, stock, created_at FROM products WHERE product_id = :product_id",
            {"product_id": check_id("product_id", product_id)},
        ).one()
        if row is None:
            raise NotFoundError("product", product_id)
        return Product(**row)

    # ------------------------------------------------------------------ orders

    def create_order_with_items(
        self, user_id: str, lines: Sequence[OrderLine], *, order_id: str | None = None
    ) -> Order:
        """Place an order in one transaction (see the module docstring). Raises, with nothing written:
        :class:`InsufficientStockError`, :class:`PriceChangedError`, :class:`NotFoundError` (user or
        product), :class:`DuplicateOrderError`."""
        uid = check_id("user_id", user_id)
        oid = check_id("order_id", order_id if order_id is not None else self._new_id())
        lines = tuple(lines)
        if not lines:
            raise InvalidEntityError("an order needs at least one line")
        if len({line.product_id for line in lines}) != len(lines):
            raise InvalidEntityError("a product appears once per order: merge its lines")
        now = self._clock()
        order = Order(oid, uid, INITIAL_STATUS, order_total(lines), lines, now, now, 1)

        def work(tx: SqlTransaction) -> None:
            tx.execute_statement(
                "INSERT INTO orders (order_id, user_id, status, total_amount, created_at, updated_at, version) "
                "VALUES (:order_id, :user_id, :status, :total_amount, :now, :now, 1)",
                {
                    "order_id": oid,
                    "user_id": uid,
                    "status": order.status,
                    "total_amount": order.total_amount,
                    "now": now,
                },
            )
            for line in sorted(lines, key=lambda ln: ln.product_id):
                _decrement_stock(tx, line)
            tx.batch_execute_statement(
                "INSERT INTO order_items (order_id, line_no, product_id, quantity, price) "
                "VALUES (:order_id, :line_no, :product_id, :quantity, :price)",
                [
                    {
                        "order_id": oid,
                        "line_no": i,
                        "product_id": ln.product_id,
                        "quantity": ln.quantity,
                        "price": ln.price,
                    }
                    for i, ln in enumerate(lines)
                ],
            )
            _record_change(tx, order)

        try:
            self.backend.execute_transaction(work)
        except SqlError as exc:
            if exc.code == _UNIQUE_VIOLATION and exc.constraint == "orders_pkey":
                raise DuplicateOrderError(oid) from exc
            if exc.code == _FOREIGN_KEY_VIOLATION and exc.constraint == "orders_user_id_fkey":
                raise NotFoundError("user", uid) from exc
            raise
        return order

    def get_order_with_items(self, order_id: str) -> Order:
        oid = check_id("order_id", order_id)
        header = self.backend.execute_statement(
            "SELECT order_id, user_id, status, total_amount, created_at, updated_at, version "
            "FROM orders WHERE order_id = :order_id",
            {"order_id": oid},
        ).one()
        if header is None:
            raise NotFoundError("order", order_id)
        return Order(**header, lines=self._lines(self.backend.execute_statement, oid))

    def update_order_status(self, order_id: str, new_status: str, *, expected_status: str) -> Order:
        """Move an order from ``expected_status`` to ``new_status`` (see the module docstring)."""
        oid = check_id("order_id", order_id)
        check_transition(expected_status, new_status)
        now = self._clock()

        def work(tx: SqlTransaction) -> Order:
            updated = tx.execute_statement(
                "UPDATE orders SET status = :new_status, updated_at = :now, version = version + 1 "
                "WHERE order_id = :order_id AND status = :expected_status "
                "RETURNING order_id, user_id, status, total_amount, created_at, updated_at, version",
                {"new_status": new_status, "now": now, "order_id": oid, "expected_status": expected_status},
            )
            row = updated.one()
            if updated.rows_updated == 0 or row is None:
                current = tx.execute_statement(
                    "SELECT status FROM orders WHERE order_id = :order_id", {"order_id": oid}
                )
                found = current.one()
                if found is None:
                    raise NotFoundError("order", oid)
                raise OrderStatusConflictError(oid, expected_status, found["status"])
            order = Order(**row, lines=self._lines(tx.execute_statement, oid))
            _record_change(tx, order)
            return order

        return self.backend.execute_transaction(work)

    # ------------------------------------------------------------------ analytics

    def get_analytics_data(self, since: date, until: date | None = None) -> list[DailyAnalytics]:
        """Daily order figures for the UTC days ``since`` to ``until`` inclusive (default: ``since`` only),
        days without any order change omitted, in day order."""
        last = until or since
        rows = self.backend.execute_statement(
            _ANALYTICS,
            {
                "since": datetime.combine(since, time(), tzinfo=UTC),
                "until": datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC),
            },
        ).rows
        return [DailyAnalytics(**row) for row in rows]

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _lines(execute: Callable[[str, Params], SqlResult], order_id: str) -> tuple[OrderLine, ...]:
        rows = execute(
            "SELECT product_id, quantity, price FROM order_items WHERE order_id = :order_id ORDER BY line_no",
            {"order_id": order_id},
        ).rows
        return tuple(OrderLine(r["product_id"], r["quantity"], r["price"]) for r in rows)


def _decrement_stock(tx: SqlTransaction, line: OrderLine) -> None:
    """The checked decrement: zero affected rows raises (and so rolls the order back)."""
    result = tx.execute_statement(
        "UPDATE products SET stock = stock - :quantity "
        "WHERE product_id = :product_id AND stock >= :quantity AND price = :price",
        {"quantity": line.quantity, "product_id": line.product_id, "price": line.price},
    )
    if result.rows_updated == 1:
        return
    row: dict[str, Any] | None = tx.execute_statement(
        "SELECT stock, price FROM products WHERE product_id = :product_id", {"product_id": line.product_id}
    ).one()
    if row is None:
        raise NotFoundError("product", line.product_id)
    if row["price"] != line.price:
        raise PriceChangedError(line.product_id, line.price, row["price"])
    raise InsufficientStockError(line.product_id, line.quantity, row["stock"])


def _record_change(tx: SqlTransaction, order: Order) -> None:
    """The status change row and its outbox event, in the caller's transaction."""
    tx.execute_statement(
        "INSERT INTO order_status_changes (order_id, version, status, changed_at) "
        "VALUES (:order_id, :version, :status, :changed_at)",
        {"order_id": order.order_id, "version": order.version, "status": order.status, "changed_at": order.updated_at},
    )
    event = order_event_wire(
        order_id=order.order_id,
        user_id=order.user_id,
        status=order.status,
        version=order.version,
        total_amount=order.total_amount,
        lines=order.lines,
        occurred_at=order.updated_at,
        source=EVENT_SOURCE,
    )
    tx.execute_statement(
        "INSERT INTO outbox (event_id, partition_key, payload) VALUES (:event_id, :partition_key, :payload)",
        {"event_id": uuid.UUID(event["event_id"]), "partition_key": f"order#{order.order_id}", "payload": Json(event)},
    )
