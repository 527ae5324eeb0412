"""The entities both stores hold, as immutable values, and the checks every write applies first.

Money is :class:`~decimal.Decimal` end to end (a ``float`` is refused, never converted); times are
aware UTC :class:`~datetime.datetime`; quantities and stock are ``int``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Generic, TypeVar

from pipeline.stores.errors import InvalidEntityError

__all__ = [
    "INITIAL_STATUS",
    "ORDER_STATUSES",
    "TRANSITIONS",
    "Clock",
    "Order",
    "OrderLine",
    "Page",
    "Product",
    "Review",
    "User",
    "UserProfile",
    "UserWithProfile",
    "check_id",
    "check_transition",
    "money",
    "normalise_email",
    "order_total",
    "utc_now",
]

T = TypeVar("T")
Clock = Callable[[], datetime]

INITIAL_STATUS: Final = "created"
TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    "created": frozenset({"paid", "completed", "cancelled"}),
    "paid": frozenset({"shipped", "completed", "cancelled"}),
    "shipped": frozenset({"completed", "cancelled"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}
"""Allowed status changes. ``created``, ``completed`` and ``cancelled`` are the statuses the metrics count."""
ORDER_STATUSES: Final = frozenset(TRANSITIONS)
_MAX_ID: Final = 256


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_id(kind: str, value: str) -> str:
    """A non-empty id of at most 256 characters without ``#`` (the single table's key separator)."""
    if not isinstance(value, str) or not value or len(value) > _MAX_ID or "#" in value:
        raise InvalidEntityError(f"{kind}: a non-empty string of at most {_MAX_ID} characters without '#'")
    return value


def money(value: object, what: str = "amount") -> Decimal:
    """A finite, non-negative :class:`Decimal`; ``int`` and decimal strings are accepted, ``float`` never."""
    if isinstance(value, bool | float):
        raise InvalidEntityError(f"{what}: money is Decimal, never {type(value).__name__}")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except ArithmeticError as exc:
        raise InvalidEntityError(f"{what}: {value!r} is not a decimal amount") from exc
    if not amount.is_finite() or amount < 0:
        raise InvalidEntityError(f"{what}: {value!r} is not a finite, non-negative amount")
    return amount


def normalise_email(email: str) -> str:
    """The form uniqueness is checked on: stripped, lowercased. Refuses what is not ``local@domain``."""
    normal = email.strip().lower() if isinstance(email, str) else ""
    local, at, domain = normal.partition("@")
    if not (local and at and domain) or "#" in normal or len(normal) > _MAX_ID:
        raise InvalidEntityError(f"email: {email!r} is not an address")
    return normal


def check_transition(current: str, new: str) -> None:
    if new not in ORDER_STATUSES:
        raise InvalidEntityError(f"status: {new!r} is not one of {sorted(ORDER_STATUSES)}")
    if current not in ORDER_STATUSES or new not in TRANSITIONS[current]:
        raise InvalidEntityError(f"status: an order cannot move from {current!r} to {new!r}")


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    email: str
    name: str
    user_segment: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserProfile:
    user_id: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class UserWithProfile:
    user: User
    profile: UserProfile | None


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    category: str
    price: Decimal
    stock: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One product of an order: how many, at what unit price."""

    product_id: str
    quantity: int
    price: Decimal

    def __post_init__(self) -> None:
        check_id("product_id", self.product_id)
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity <= 0:
            raise InvalidEntityError(f"quantity of {self.product_id!r}: a positive integer, not {self.quantity!r}")
        object.__setattr__(self, "price", money(self.price, f"price of {self.product_id!r}"))

    @property
    def amount(self) -> Decimal:
        return self.price * self.quantity


def order_total(lines: Sequence[OrderLine]) -> Decimal:
    """The order's total: the exact sum of quantity times price (no rounding)."""
    return sum((line.amount for line in lines), Decimal(0))


@dataclass(frozen=True, slots=True)
class Order:
    """An order; ``version`` starts at 1 and grows by one with each status change."""

    order_id: str
    user_id: str
    status: str
    total_amount: Decimal
    lines: tuple[OrderLine, ...]
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class Review:
    product_id: str
    user_id: str
    rating: int
    comment: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a query. Pass ``cursor`` back to get the next page; ``None`` means this was the last.

    The cursor is opaque (DynamoDB's ``LastEvaluatedKey``); it is only valid for the same query.
    """

    items: list[T]
    cursor: Mapping[str, Any] | None = field(default=None)
