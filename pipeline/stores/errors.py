"""Every error the entity stores raise on purpose, under :class:`StoreError`.

``ClientError`` (DynamoDB, RDS Data API) and driver errors (psycopg) are translated where they are
caught, with ``raise ... from exc``. A write that raised one of these wrote nothing: every
multi-item write is one transaction.
"""

from __future__ import annotations

from pipeline.exceptions import PipelineError

__all__ = [
    "DuplicateEmailError",
    "DuplicateOrderError",
    "DuplicateProductError",
    "DuplicateReviewError",
    "DuplicateUserError",
    "InsufficientStockError",
    "InvalidEntityError",
    "NotFoundError",
    "OrderStatusConflictError",
    "OrderTooLargeError",
    "PriceChangedError",
    "SqlError",
    "StoreError",
    "StoreUnavailableError",
]


class StoreError(PipelineError):
    """Root of every error the entity stores raise on purpose."""


class InvalidEntityError(StoreError):
    """An argument can never be stored as given (empty id, negative money, float money, bad status)."""


class NotFoundError(StoreError):
    """The entity an operation needs does not exist; ``kind`` and ``key`` name it."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} not found")
        self.kind = kind
        self.key = key


class DuplicateEmailError(StoreError):
    """Another user already has this email address (compared case-insensitively); nothing was written."""

    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email!r} already exists")
        self.email = email


class DuplicateUserError(StoreError):
    """A user with this id already exists; nothing was written."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"user {user_id!r} already exists")
        self.user_id = user_id


class DuplicateProductError(StoreError):
    """A product with this id already exists; nothing was written."""

    def __init__(self, product_id: str) -> None:
        super().__init__(f"product {product_id!r} already exists")
        self.product_id = product_id


class DuplicateOrderError(StoreError):
    """An order with this id already exists; nothing was written (a retried create, most likely)."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id!r} already exists")
        self.order_id = order_id


class DuplicateReviewError(StoreError):
    """This user already reviewed this product; nothing was written."""

    def __init__(self, product_id: str, user_id: str) -> None:
        super().__init__(f"user {user_id!r} already reviewed product {product_id!r}")
        self.product_id = product_id
        self.user_id = user_id


class InsufficientStockError(StoreError):
    """A product has fewer units than the order asks for; the order was not written, no stock moved."""

    def __init__(self, product_id: str, requested: int, available: int | None) -> None:
        have = "unknown" if available is None else str(available)
        super().__init__(f"product {product_id!r}: {requested} requested, {have} in stock")
        self.product_id = product_id
        self.requested = requested
        self.available = available


class PriceChangedError(StoreError):
    """An order line's price is not the product's current price; the order was not written."""

    def __init__(self, product_id: str, expected: object, actual: object) -> None:
        super().__init__(f"product {product_id!r}: price is {actual}, the order says {expected}")
        self.product_id = product_id


class OrderTooLargeError(StoreError):
    """An order has more lines than one transaction can hold; nothing was written. Split it into orders."""

    def __init__(self, lines: int, limit: int) -> None:
        super().__init__(f"an order holds at most {limit} lines (one transaction); this one has {lines}")
        self.lines = lines
        self.limit = limit


class OrderStatusConflictError(StoreError):
    """The order's current status is not the one the caller expected; nothing was written.

    ``actual`` is the status found (``None`` when it could not be read back).
    """

    def __init__(self, order_id: str, expected: str, actual: str | None) -> None:
        super().__init__(f"order {order_id!r}: expected status {expected!r}, found {actual!r}")
        self.order_id = order_id
        self.expected = expected
        self.actual = actual


class SqlError(StoreError):
    """The database refused a statement (syntax, constraint, type); the transaction was rolled back.

    ``code`` is the SQLSTATE and ``constraint`` the violated constraint's name, when the backend knows them.
    """

    def __init__(self, message: str, code: str | None = None, constraint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.constraint = constraint


class StoreUnavailableError(StoreError):
    """The store could not be reached or is throttling past retries; the caller may try again later.

    A write that failed this way may or may not have been committed (a lost response): the stores'
    writes are idempotent by id (orders, users by email), so retrying with the same ids is safe.
    """
