"""The read API's contract with DynamoDB, on a real botocore client with its Stubber: each chart is
one ``Query`` per page (``LastEvaluatedKey`` followed), never a ``Scan``; money stays ``Decimal``;
watermarks never leak; ``limit`` stops the paging. And the dashboard's vendored Chart.js is the
recorded file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipeline.exceptions import ConfigurationError
from pipeline.readapi.cloudwatch import CloudWatchReader
from pipeline.readapi.tables import BY_DAY_INDEX, MetricsReader, ReadTables
from tools.dashboard.server import STATIC
from tools.dashboard.source import chart_json

DAY = date(2026, 11, 24)
TABLES = ReadTables("orders-t", "products-t", "windows-t")


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",  # noqa: S106
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _hour_item(hour: int, orders: int, revenue: str, shard: int | None = 0) -> dict[str, Any]:
    """A partial of an hourly order bucket (``shard`` None: an item written before partials existed)."""
    suffix = "" if shard is None else f"~{shard}"
    item = {
        "metric_type": {"S": "hourly_orders"},
        "time_bucket": {"S": f"2026-11-24#{hour:02d}{suffix}"},
        "order_count": {"N": str(orders)},
        "total_revenue": {"N": revenue},
    }
    if shard is not None:
        item[f"_pos_shardId-{shard:012d}"] = {"S": "0001.000000.0000000"}
    return item


def test_orders_per_hour_follows_every_page_and_keeps_money_exact(stubbed: tuple[Any, Stubber]) -> None:
    # GIVEN a Query answered in two pages
    client, stubber = stubbed
    expected = {
        "TableName": "orders-t",
        "KeyConditionExpression": "metric_type = :t AND begins_with(time_bucket, :d)",
        "ExpressionAttributeValues": {":t": {"S": "hourly_orders"}, ":d": {"S": "2026-11-24#"}},
    }
    last = {"metric_type": {"S": "hourly_orders"}, "time_bucket": {"S": "2026-11-24#06~3"}}
    # (hour 6: a legacy item and two shards' partials, across the page break)
    first = [_hour_item(6, 1, "0.05", None), _hour_item(6, 1, "0.02", 0), _hour_item(6, 0, "0.03", 3)]
    stubber.add_response("query", {"Items": first, "LastEvaluatedKey": last}, expected)
    second = [_hour_item(6, 0, "0", 12), _hour_item(7, 1, "0.2")]
    stubber.add_response("query", {"Items": second}, {**expected, "ExclusiveStartKey": last})
    # WHEN the chart is read
    chart = MetricsReader(client, TABLES).orders_per_hour(DAY)
    # THEN two Query calls (the stubber holds no other), 24 hours, partials summed exactly as Decimal
    assert chart.requests == 2 and len(chart.rows) == 24
    assert chart.rows[6].hour == datetime(2026, 11, 24, 6, tzinfo=UTC)
    assert [(r.orders, r.revenue) for r in chart.rows[5:8]] == [(0, 0), (2, Decimal("0.1")), (1, Decimal("0.2"))]
    assert sum(r.revenue for r in chart.rows) == Decimal("0.3")
    assert chart_json(chart)["totals"]["revenue"] == "0.30"  # 0.05 + 0.02 + 0.03 + 0.2, exactly


def test_with_a_key_split_a_chart_queries_each_split_and_sums_across_them(stubbed: tuple[Any, Stubber]) -> None:
    # GIVEN partition keys split 2 ways: hour 6 has partials under both hourly_orders~0 and ~1
    client, stubber = stubbed
    for k, (orders, revenue) in enumerate([(2, "1.50"), (3, "0.25")]):
        item = {**_hour_item(6, orders, revenue, k), "metric_type": {"S": f"hourly_orders~{k}"}}
        expected = {
            "TableName": "orders-t",
            "KeyConditionExpression": "metric_type = :t AND begins_with(time_bucket, :d)",
            "ExpressionAttributeValues": {":t": {"S": f"hourly_orders~{k}"}, ":d": {"S": "2026-11-24#"}},
        }
        stubber.add_response("query", {"Items": [item]}, expected)
    # WHEN the chart is read with the stack's split
    tables = ReadTables.from_outputs(
        {"OrderMetricsTable": "orders-t", "ProductMetricsTable": "p", "WindowMetricsTable": "w", "MetricKeySplit": "2"}
    )
    chart = MetricsReader(client, tables).orders_per_hour(DAY)
    # THEN one Query per split, and the hour sums both
    assert chart.requests == 2
    assert (chart.rows[6].orders, chart.rows[6].revenue) == (5, Decimal("1.75"))
    with pytest.raises(ConfigurationError, match="not a key split"):
        ReadTables.from_env(
            {
                "ORDER_METRICS_TABLE": "o",
                "PRODUCT_METRICS_TABLE": "p",
                "WINDOW_METRICS_TABLE": "w",
                "METRIC_KEY_SPLIT": "0",
            }
        )


def test_with_a_key_split_top_products_queries_each_split_of_the_index_day(stubbed: tuple[Any, Stubber]) -> None:
    # GIVEN the index's day split 2 ways: p-1's partials under view_day ~0 (shard 4) and ~1 (shard 7)
    client, stubber = stubbed
    for k, (shard, views) in enumerate([(4, 2), (7, 5)]):
        item = {
            "product_id": {"S": f"p-1~{k}"},
            "metric_date": {"S": f"2026-11-24~{shard}"},
            "view_day": {"S": f"2026-11-24~{k}"},
            "view_count": {"N": str(views)},
        }
        expected = {
            "TableName": "p",
            "IndexName": BY_DAY_INDEX,
            "KeyConditionExpression": "view_day = :d",
            "ExpressionAttributeValues": {":d": {"S": f"2026-11-24~{k}"}},
        }
        stubber.add_response("query", {"Items": [item]}, expected)
    tables = ReadTables.from_outputs(
        {"OrderMetricsTable": "o", "ProductMetricsTable": "p", "WindowMetricsTable": "w", "MetricKeySplit": "2"}
    )
    # WHEN the top products are read with the stack's split
    chart = MetricsReader(client, tables).top_products(DAY)
    # THEN one Query per split of the day, and the product's views summed across them
    assert chart.requests == 2
    assert [(row.product_id, row.views) for row in chart.rows] == [("p-1", 7)]


def test_top_products_sums_every_partial_of_the_day_from_the_index_then_ranks(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    base = {
        "TableName": "products-t",
        "IndexName": BY_DAY_INDEX,
        "KeyConditionExpression": "view_day = :d",
        "ExpressionAttributeValues": {":d": {"S": "2026-11-24"}},
    }

    def item(product: str, shard: int, views: int) -> dict[str, Any]:
        return {
            "product_id": {"S": product},
            "metric_date": {"S": f"2026-11-24~{shard}"},
            "view_day": {"S": "2026-11-24"},
            "view_count": {"N": str(views)},
            f"_pos_shardId-{shard:012d}": {"S": "0001.000000.0000000"},
        }

    last = {"product_id": {"S": "p-2"}, "metric_date": {"S": "2026-11-24~0"}, "view_day": {"S": "2026-11-24"}}
    # GIVEN the day's partials over two pages: p-2 is seen by two shards (3 + 7 views), one on each page
    stubber.add_response(
        "query", {"Items": [item("p-1", 0, 9), item("p-2", 0, 3)], "LastEvaluatedKey": last}, dict(base)
    )
    stubber.add_response(
        "query",
        {"Items": [item("p-2", 5, 7), item("p-3", 5, 4), item("p-4", 1, 4)]},
        {**base, "ExclusiveStartKey": last},
    )
    # WHEN the top 3 are read
    chart = MetricsReader(client, TABLES).top_products(DAY, 3)
    # THEN every page was read, partials summed per product, ties ranked by product id, the limit kept
    assert chart.requests == 2
    assert [(r.rank, r.product_id, r.views) for r in chart.rows] == [(1, "p-2", 10), (2, "p-1", 9), (3, "p-3", 4)]


def test_views_per_hour_sums_every_products_hours(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    items = [
        {"product_id": {"S": "a"}, "metric_date": {"S": "2026-11-24"}, "view_count": {"N": "3"}, "hour_06": {"N": "3"}},
        {
            "product_id": {"S": "b"},
            "metric_date": {"S": "2026-11-24"},
            "view_count": {"N": "3"},
            "hour_06": {"N": "1"},
            "hour_23": {"N": "2"},
        },
    ]
    stubber.add_response("query", {"Items": items})
    chart = MetricsReader(client, TABLES).product_views_per_hour(DAY)
    assert chart.requests == 1
    assert {r.hour.hour: r.views for r in chart.rows if r.views} == {6: 4, 23: 2}


def test_windows_refuses_an_unknown_metric_before_any_request(stubbed: tuple[Any, Stubber]) -> None:
    client, _ = stubbed
    with pytest.raises(ValueError, match="unknown window metric"):
        MetricsReader(client, TABLES).windows(DAY, "orders_2h")


def test_the_vendored_chart_js_is_the_recorded_file_and_the_page_loads_it_locally() -> None:
    vendored = STATIC / "vendor" / "chart.js-4.6.1"
    digest = hashlib.sha256((vendored / "chart.umd.min.js").read_bytes()).hexdigest()
    assert digest == "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2"
    assert digest in (vendored / "VENDORED.md").read_text()
    assert "MIT License" in (vendored / "LICENSE.md").read_text()
    page = (STATIC / "index.html").read_text()
    assert 'src="/static/vendor/chart.js-4.6.1/chart.umd.min.js"' in page
    assert "http://" not in page and "https://" not in page


def test_iterator_age_is_one_get_metric_data_of_the_consumers_maximum() -> None:
    client = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",  # noqa: S106
    )
    since, until = datetime(2026, 11, 24, 6, tzinfo=UTC), datetime(2026, 11, 24, 7, tzinfo=UTC)
    query = {
        "Id": "m",
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/Lambda",
                "MetricName": "IteratorAge",
                "Dimensions": [{"Name": "FunctionName", "Value": "consumer-fn"}],
            },
            "Period": 60,
            "Stat": "Maximum",
        },
        "ReturnData": True,
    }
    later, earlier = datetime(2026, 11, 24, 6, 2, tzinfo=UTC), datetime(2026, 11, 24, 6, 1, tzinfo=UTC)
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_metric_data",
            {"MetricDataResults": [{"Id": "m", "Timestamps": [later, earlier], "Values": [250.0, 1200.0]}]},
            {"MetricDataQueries": [query], "StartTime": since, "EndTime": until},
        )
        chart = CloudWatchReader(client, "consumer-fn").iterator_age(since, until)
        stubber.assert_no_pending_responses()
    assert chart.requests == 1
    assert [(p.at, p.iterator_age_ms) for p in chart.rows] == [(earlier, 1200), (later, 250)]
