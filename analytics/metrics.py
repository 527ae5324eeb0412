"""The ``window_metrics`` items: one schema per metric, shared by the SQL sinks, the readers and the reference.

Every result is one DynamoDB item keyed ``(pk, sk)``, so a window emitted again (a replay, a restart
from a savepoint, a rerun over the same archive) overwrites its item instead of adding to it:

=====================  ==================================  =========================================
metric                 pk                                  sk
=====================  ==================================  =========================================
``product_views_1m``   ``product_views_1m#<product_id>``   window start
``product_trends_5m``  ``product_trends_5m#<product_id>``  window start (5-minute windows, every minute)
``top_products_1m``    ``top_products_1m``                 window start ``#`` rank, two digits
``orders_1h``          ``orders_1h``                       window start
``late_events_1h``     ``late_events_1h#<event_type>``     hour start of the late events' own times
=====================  ==================================  =========================================

Times are the project's fixed-width UTC stamps (``YYYY-MM-DDTHH:MM:SS.ffffffZ``, see
:mod:`pipeline.plugins.timefmt`), so sort keys sort like the windows. Every item also carries
``metric``, ``window_start`` and ``window_end``. An attribute whose value is SQL ``NULL`` (an average
over no durations) is absent from the item, never stored as null.

An :data:`Item` holds ``str``, ``int`` and :class:`~decimal.Decimal` values only (DynamoDB's ``S`` and
``N``; money is never a float).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

__all__ = [
    "KEY_COLUMNS",
    "METRICS",
    "METRIC_NAMES",
    "Item",
    "ItemKey",
    "MetricSpec",
    "item_key",
    "metric_of",
    "to_item",
]

Item = dict[str, str | int | Decimal]
ItemKey = tuple[str, str]
"""``(pk, sk)``: the table's key."""

KEY_COLUMNS: Final = (
    ("pk", "STRING NOT NULL"),
    ("sk", "STRING NOT NULL"),
    ("metric", "STRING NOT NULL"),
    ("window_start", "STRING NOT NULL"),
    ("window_end", "STRING NOT NULL"),
)
"""The columns every metric's rows start with, in order (``pk``, ``sk`` are the table's key)."""


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its name (also its SQL view's name) and the columns after :data:`KEY_COLUMNS`."""

    name: str
    values: tuple[tuple[str, str], ...]

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        """Every column of the metric's rows, in order: ``(name, Flink SQL type)``."""
        return KEY_COLUMNS + self.values


METRICS: Final = (
    MetricSpec(
        "product_views_1m",
        (
            ("product_id", "STRING"),
            ("view_count", "BIGINT"),
            ("unique_viewers", "BIGINT"),
            ("avg_session_duration", "DECIMAL(38, 6)"),
        ),
    ),
    MetricSpec("product_trends_5m", (("product_id", "STRING"), ("view_count", "BIGINT"), ("unique_viewers", "BIGINT"))),
    MetricSpec("top_products_1m", (("rank", "INT"), ("product_id", "STRING"), ("view_count", "BIGINT"))),
    MetricSpec(
        "orders_1h",
        (
            ("orders", "BIGINT"),
            ("revenue", "DECIMAL(38, 10)"),
            ("customers", "BIGINT"),
            ("completed_orders", "BIGINT"),
            ("completed_revenue", "DECIMAL(38, 10)"),
        ),
    ),
    MetricSpec("late_events_1h", (("event_type", "STRING"), ("late_events", "BIGINT"))),
)
METRIC_NAMES: Final = tuple(spec.name for spec in METRICS)


def item_key(item: Mapping[str, object]) -> ItemKey:
    """The ``(pk, sk)`` of an item."""
    return (str(item["pk"]), str(item["sk"]))


def metric_of(name: str) -> MetricSpec:
    """The spec of a metric by name; ``KeyError`` for an unknown one."""
    for spec in METRICS:
        if spec.name == name:
            return spec
    raise KeyError(name)


def to_item(spec: MetricSpec, row: Mapping[str, object]) -> Item:
    """The item of one output row: the spec's columns, ``None`` dropped, numbers as ``int`` or ``Decimal``.

    Raises ``ValueError`` when a column is missing or a value does not have its column's type.
    """
    item: Item = {}
    for name, sql_type in spec.columns:
        if name not in row:
            raise ValueError(f"{spec.name}: no column {name!r} in {sorted(row)}")
        value = row[name]
        if value is None:
            if sql_type.endswith("NOT NULL"):
                raise ValueError(f"{spec.name}: {name} is null")
            continue
        if sql_type.startswith("STRING"):
            ok = isinstance(value, str)
        elif sql_type.startswith("DECIMAL"):
            ok = isinstance(value, Decimal | int) and not isinstance(value, bool)
            value = Decimal(value) if ok else value  # type: ignore[arg-type]
        else:
            ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok:
            raise ValueError(f"{spec.name}: {name} = {value!r} is not a {sql_type}")
        item[name] = value  # type: ignore[assignment]
    return item
