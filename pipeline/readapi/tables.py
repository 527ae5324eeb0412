"""The dashboard's charts over the metrics tables: each one ``Query`` (never a ``Scan``), paginated.

This is the one module that knows how metric items are laid out *for reading*. The counter tables
hold per-shard partial items (:mod:`pipeline.metrics.partials`: the sort key ends in ``~<shard>``);
every chart's one Query returns all the partials its key condition covers, and
:func:`~pipeline.metrics.partials.merge_items` sums them into logical items before anything else.
The layouts it reads (written by ``pipeline.plugins`` and the analytics job):

==========================  ======================================================  ==========================
chart                       the Query                                               partials per day
==========================  ======================================================  ==========================
orders per hour             ``order_metrics``: ``metric_type = hourly_orders AND     at most 24 per shard that
                            begins_with(time_bucket, "YYYY-MM-DD#")``                wrote orders
product views per hour      one product: ``product_metrics``: ``product_id = P AND   1 per shard (its
                            metric_date BETWEEN D AND D~~``; every product: index   ``hour_00..23``); index:
                            ``by-view-day``: ``view_day = D``, hours summed          one per product and shard
top products                index ``by-view-day``: ``view_day = D``, every          one per product and shard
                            partial of the day read, summed per product, ranked
window results              ``window_metrics``: ``pk = <metric>[#<key>] AND          ``orders_1h`` 24,
                            begins_with(sk, "YYYY-MM-DD")``                          ``top_products_1m`` 14,400
==========================  ======================================================  ==========================

Guarantees: every chart is one ``Query`` call per page of results (``LastEvaluatedKey`` followed to
the end, or for windows until ``limit`` rows), and :attr:`Chart.requests` says how many pages it
took. Top products reads every product-day partial of the day (the ranking needs the sums), so its
cost grows with the products viewed that day times the shards that saw them, not with ``limit``.
Numbers are read as ``Decimal`` (money stays exact); counters are returned as ``int``. Reads are
eventually consistent (the index cannot be read otherwise), so a chart may trail the last write by a
moment. Watermark attributes (``_pos_<shard>``) are never returned. Product items written before
partials existed lack ``view_day`` and so are not in the index (the per-product chart still reads them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Final

from boto3.dynamodb.types import TypeDeserializer

from pipeline.exceptions import ConfigurationError
from pipeline.metrics.partials import SPLIT_MAX, merge_items, partition_values, upper_bound
from pipeline.readapi.models import Chart, HourlyOrders, HourlyViews, TopProduct, WindowRow

__all__ = ["BY_DAY_INDEX", "WINDOW_METRICS", "MetricsReader", "ReadTables"]

BY_DAY_INDEX: Final = "by-view-day"
"""``product_metrics``' index: ``view_day`` (hash), ``product_id`` (range), counters and hours projected."""
WINDOW_METRICS: Final = ("orders_1h", "top_products_1m", "product_views_1m", "product_trends_5m", "late_events_1h")
"""The analytics job's metrics (``analytics/metrics.py``); the last three are keyed per product or type."""
_HOURLY_ORDERS: Final = "hourly_orders"
_WINDOW_KEYS: Final = frozenset({"pk", "sk", "metric", "window_start", "window_end"})
_deserializer = TypeDeserializer()


@dataclass(frozen=True, slots=True)
class ReadTables:
    """Physical names of the tables the charts read."""

    order_metrics: str
    product_metrics: str
    window_metrics: str
    key_split: int = 1
    """The writers' hot-key write sharding (``MetricKeySplit``): a chart over one partition key of a
    partial table makes this many Queries, one per split (:func:`~pipeline.metrics.partials.partition_values`)."""

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, str]) -> ReadTables:
        """From the stack's outputs (``OrderMetricsTable``, ..., ``MetricKeySplit`` if any); raises
        ConfigurationError naming what is missing."""
        names = ("OrderMetricsTable", "ProductMetricsTable", "WindowMetricsTable")
        missing = [name for name in names if not outputs.get(name)]
        if missing:
            raise ConfigurationError(f"the stack's outputs lack {', '.join(missing)}: deploy template.yaml again")
        orders, products, windows = (str(outputs[name]) for name in names)
        return cls(orders, products, windows, _split(outputs.get("MetricKeySplit"), "MetricKeySplit"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReadTables:
        """From ``ORDER_METRICS_TABLE``, ``PRODUCT_METRICS_TABLE``, ``WINDOW_METRICS_TABLE`` (and
        ``METRIC_KEY_SPLIT``, 1 when unset)."""
        env = os.environ if environ is None else environ
        names = ("ORDER_METRICS_TABLE", "PRODUCT_METRICS_TABLE", "WINDOW_METRICS_TABLE")
        missing = [name for name in names if not env.get(name)]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)} (run 'pipeline up')")
        orders, products, windows = (env[name] for name in names)
        return cls(orders, products, windows, _split(env.get("METRIC_KEY_SPLIT"), "METRIC_KEY_SPLIT"))


def _split(raw: object, name: str) -> int:
    text = str(raw or "1").strip()
    if not text.isdigit() or not 1 <= int(text) <= SPLIT_MAX:
        raise ConfigurationError(f"{name}={text!r} is not a key split from 1 to {SPLIT_MAX}")
    return int(text)


class MetricsReader:
    """The charts of one deployment. ``dynamodb`` is a low-level boto3 client; thread-safe as boto3's clients are."""

    def __init__(self, dynamodb: Any, tables: ReadTables) -> None:
        self._dynamodb = dynamodb
        self._tables = tables

    def orders_per_hour(self, day: date) -> Chart[HourlyOrders]:
        """Orders, revenue, items and completions per UTC hour of ``day``: 24 rows, zeros where none."""
        items, pages = self._query(
            "order_metrics",
            partition=(":t", _HOURLY_ORDERS),
            TableName=self._tables.order_metrics,
            KeyConditionExpression="metric_type = :t AND begins_with(time_bucket, :d)",
            ExpressionAttributeValues={":d": {"S": f"{day.isoformat()}#"}},
        )
        by_hour = {int(str(item["time_bucket"])[11:13]): item for item in items}
        rows = tuple(_hourly_orders(_hour(day, h), by_hour.get(h, {})) for h in range(24))
        return Chart("orders_per_hour", rows, pages, f"Query {self._tables.order_metrics} metric_type={_HOURLY_ORDERS}")

    def product_views_per_hour(self, day: date, product_id: str | None = None) -> Chart[HourlyViews]:
        """Views per UTC hour of ``day``: of ``product_id``, or of every product summed. 24 rows."""
        if product_id is not None:
            items, pages = self._query(
                "product_metrics",
                partition=(":p", product_id),
                TableName=self._tables.product_metrics,
                KeyConditionExpression="product_id = :p AND metric_date BETWEEN :d AND :e",
                ExpressionAttributeValues={":d": {"S": day.isoformat()}, ":e": {"S": upper_bound(day.isoformat())}},
            )
            source = f"Query {self._tables.product_metrics} product_id={product_id}"
        else:
            items, pages = self._by_day(day)
            source = f"Query {self._tables.product_metrics} index {BY_DAY_INDEX}"
        totals = [0] * 24
        for item in items:
            for h in range(24):
                totals[h] += int(item.get(f"hour_{h:02d}", 0))
        rows = tuple(HourlyViews(_hour(day, h), totals[h]) for h in range(24))
        return Chart("product_views_per_hour", rows, pages, source)

    def top_products(self, day: date, limit: int = 10) -> Chart[TopProduct]:
        """The ``limit`` most viewed products of ``day``, most viewed first (ties by product id).

        One Query of the day's index that reads every product-day partial of ``day`` (all its pages):
        a product's views are the sum of its partials, so no partial can be left unread.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        items, pages = self._by_day(day)
        items.sort(key=lambda item: (-int(item.get("view_count", 0)), str(item["product_id"])))
        rows = tuple(
            TopProduct(
                rank=rank,
                product_id=str(item["product_id"]),
                views=int(item["view_count"]),
                last_viewed=str(item["last_viewed"]) if "last_viewed" in item else None,
            )
            for rank, item in enumerate(items[:limit], start=1)
        )
        return Chart("top_products", rows, pages, f"Query {self._tables.product_metrics} index {BY_DAY_INDEX}")

    def windows(self, day: date, metric: str = "orders_1h", key: str | None = None) -> Chart[WindowRow]:
        """The analytics job's windows of ``metric`` starting on ``day`` (UTC), in window order.

        ``key`` is the product id (``product_views_1m``, ``product_trends_5m``) or event type
        (``late_events_1h``) those metrics are keyed by; ``orders_1h`` and ``top_products_1m`` have none.
        """
        if metric not in WINDOW_METRICS:
            raise ValueError(f"unknown window metric {metric!r}; one of {', '.join(WINDOW_METRICS)}")
        pk = metric if key is None else f"{metric}#{key}"
        items, pages = self._query(
            None,
            TableName=self._tables.window_metrics,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :d)",
            ExpressionAttributeValues={":pk": {"S": pk}, ":d": {"S": day.isoformat()}},
        )
        rows = tuple(
            WindowRow(
                metric=str(item.get("metric", metric)),
                key=str(item["sk"]),
                window_start=_parse_stamp(str(item["window_start"])),
                window_end=_parse_stamp(str(item["window_end"])),
                values={name: _plain(value) for name, value in item.items() if name not in _WINDOW_KEYS},
            )
            for item in items
        )
        return Chart(f"windows_{metric}", rows, pages, f"Query {self._tables.window_metrics} pk={pk}")

    # ------------------------------------------------------------------ reading

    def _by_day(self, day: date) -> tuple[list[dict[str, Any]], int]:
        """Every product's logical item of ``day`` from the index (all partials, every page; with a key
        split K, K Queries: the index's day is split as the partition keys are)."""
        return self._query(
            "product_metrics",
            partition=(":d", day.isoformat()),
            TableName=self._tables.product_metrics,
            IndexName=BY_DAY_INDEX,
            KeyConditionExpression="view_day = :d",
            ExpressionAttributeValues={},
        )

    def _query(
        self,
        table: str | None,
        limit: int | None = None,
        partition: tuple[str, str] | None = None,
        **params: Any,
    ) -> tuple[list[dict[str, Any]], int]:
        """Every item of one Query, page after page (at most ``limit`` items), and the number of pages.

        Items of a metric ``table`` (a logical name) come back merged: one logical item per key.
        ``partition`` (placeholder, logical value) is the partition key of a partial table: one Query
        per key split, the placeholder set to each stored value.
        """
        items: list[dict[str, Any]] = []
        pages = 0
        split = self._tables.key_split
        values = [None] if partition is None else partition_values(str(table), partition[1], split)
        for value in values:
            call = dict(params)
            if partition is not None:
                call["ExpressionAttributeValues"] = {partition[0]: {"S": value}, **params["ExpressionAttributeValues"]}
            for page in self._pages(call, limit):
                pages += 1
                items.extend(_item(raw) for raw in page)
        if table is not None:
            items = list(merge_items(table, items, split).values())
        return items, pages

    def _pages(self, params: dict[str, Any], limit: int | None) -> Iterator[list[dict[str, Any]]]:
        start: dict[str, Any] | None = None
        left = limit
        while True:
            call = dict(params)
            if start is not None:
                call["ExclusiveStartKey"] = start
            if left is not None:
                call["Limit"] = left
            response = self._dynamodb.query(**call)
            page = response.get("Items", [])
            yield page
            start = response.get("LastEvaluatedKey")
            if left is not None:
                left -= len(page)
            if not start or (left is not None and left <= 0):
                return


def _item(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in raw.items() if not name.startswith("_pos_")}


def _hour(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def _hourly_orders(hour: datetime, item: Mapping[str, Any]) -> HourlyOrders:
    return HourlyOrders(
        hour=hour,
        orders=int(item.get("order_count", 0)),
        revenue=Decimal(item.get("total_revenue", 0)),
        items_sold=int(item.get("items_sold", 0)),
        completed_orders=int(item.get("completed_orders", 0)),
        completed_revenue=Decimal(item.get("completed_revenue", 0)),
        cancelled_orders=int(item.get("cancelled_orders", 0)),
    )


def _plain(value: Any) -> str | int | Decimal:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent == 0 else value
    return str(value)


def _parse_stamp(text: str) -> datetime:
    """A window bound (``YYYY-MM-DDTHH:MM:SS.ffffffZ``) as aware UTC."""
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)
