"""What the read API returns: typed, immutable rows; money and sums are ``Decimal``, times aware UTC.

Every chart is a :class:`Chart`: its rows plus how many requests it took (one ``Query`` per page of
results for the DynamoDB charts, one ``GetMetricData`` for the CloudWatch ones), so callers can
show, and tests can assert, that no chart scans.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

__all__ = [
    "BadRowsHour",
    "Chart",
    "HourlyOrders",
    "HourlyViews",
    "LagPoint",
    "TopProduct",
    "WindowRow",
]

Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class Chart(Generic[Row]):
    """One chart's rows and what reading them cost."""

    name: str
    rows: tuple[Row, ...]
    requests: int
    """AWS requests made for this chart: DynamoDB ``Query`` pages, or CloudWatch ``GetMetricData`` calls."""
    source: str
    """Where the rows came from, e.g. ``Query order_metrics (metric_type=hourly_orders)``."""


@dataclass(frozen=True, slots=True)
class HourlyOrders:
    """One UTC hour of ``order_metrics``' ``hourly_orders`` (zeros for an hour without orders)."""

    hour: datetime
    orders: int
    revenue: Decimal
    items_sold: int
    completed_orders: int
    completed_revenue: Decimal
    cancelled_orders: int


@dataclass(frozen=True, slots=True)
class HourlyViews:
    """Product views in one UTC hour (one product's, or every product's summed)."""

    hour: datetime
    views: int


@dataclass(frozen=True, slots=True)
class TopProduct:
    """A product's views on one day; ``rank`` 1 is the most viewed (ties in the index's order)."""

    rank: int
    product_id: str
    views: int
    last_viewed: str | None
    """The stamp of its latest view that day, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""


@dataclass(frozen=True, slots=True)
class WindowRow:
    """One window the analytics job wrote to ``window_metrics``: its key, bounds and values."""

    metric: str
    key: str
    window_start: datetime
    window_end: datetime
    values: dict[str, str | int | Decimal]
    """The metric's own columns (``orders``, ``revenue``, ``view_count``, ``rank``, ...)."""


@dataclass(frozen=True, slots=True)
class BadRowsHour:
    """Bad rows the consumer reported in one UTC hour (its ``BadRows`` metric, by arrival)."""

    hour: datetime
    bad_rows: int


@dataclass(frozen=True, slots=True)
class LagPoint:
    """The consumer's iterator age: the age of the last record it read, at ``at`` (per shard when known)."""

    at: datetime
    iterator_age_ms: int
    shard: str | None = None
