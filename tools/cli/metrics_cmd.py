"""``pipeline metrics [CHART]``: the dashboard's charts as tables in the terminal, or ``--json``.

Each chart is read through the read API (:mod:`pipeline.readapi`): one ``Query`` per page of results
(never a ``Scan``), or one ``GetMetricData``; the request count is printed with each chart.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline.readapi.tables import WINDOW_METRICS
from tools.cli.args import endpoint_url, positive_int
from tools.dashboard.source import CHARTS, collect, resolve_source
from tools.local.state import STATE_DIR_VARIABLE, default_state_dir

__all__ = ["configure", "run", "utc_day"]

_EPILOG = (
    "Charts (per-shard partial items summed on read): orders (orders, revenue, items per UTC hour: order_metrics, "
    "metric_type=hourly_orders), views (product views per hour: product_metrics, every product through its "
    "by-view-day index, or --product), top (the most viewed products of the day: every product-day partial of "
    "the day from the by-view-day index, summed and ranked), windows (the analytics job's windows in window_metrics: "
    "--window-metric, --window-key), bad-rows (the consumer's BadRows metric per hour, CloudWatch), lag (the live "
    "runtime's per-shard iterator age; CloudWatch IteratorAge without a local runtime). The stack is the one "
    "'pipeline up' deployed (its state dir and stage); without one, the table names come from the environment "
    "(ORDER_METRICS_TABLE, PRODUCT_METRICS_TABLE, WINDOW_METRICS_TABLE, CONSUMER_FUNCTION_NAME)."
)


def utc_day(text: str) -> date:
    """``YYYY-MM-DD`` or ``today``, as an argparse type."""
    if text == "today":
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day such as 2026-11-24 (or 'today')") from None


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    parser.epilog = _EPILOG
    parser.add_argument("chart", nargs="?", choices=[*CHARTS, "all"], default="all", help="one chart (default all)")
    add_source_arguments(parser)
    parser.add_argument("--product", help="views: this product's hours instead of every product's")
    parser.add_argument("--limit", type=positive_int, default=10, help="top: how many products (default 10)")
    parser.add_argument(
        "--window-metric", choices=WINDOW_METRICS, default="orders_1h", help="windows: the metric (orders_1h)"
    )
    parser.add_argument("--window-key", help="windows: the product id or event type of a per-key metric")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``--day``, ``--state-dir``, ``--stage``, ``--endpoint-url``: shared with ``pipeline dashboard``."""
    parser.add_argument(
        "--day", type=utc_day, default=datetime.now(UTC).date(), help="the UTC day, YYYY-MM-DD (default today)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help=f"the live stack's state dir (default ${STATE_DIR_VARIABLE}, else the per-user one)",
    )
    parser.add_argument("--stage", default="local", help="the live stack's stage (default local)")
    parser.add_argument(
        "--endpoint-url", type=endpoint_url, help="AWS endpoint (default: the live stack's, else PIPELINE_ENDPOINT_URL)"
    )


def run(args: argparse.Namespace) -> int:
    source = resolve_source(args.state_dir.absolute(), args.stage, endpoint_url=args.endpoint_url)
    charts = CHARTS if args.chart == "all" else (args.chart,)
    document = collect(
        source,
        args.day,
        charts=charts,
        product=args.product,
        top=args.limit,
        window_metric=args.window_metric,
        window_key=args.window_key,
    )
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(document) + b"\n")
        return 0
    print(f"metrics for {document['day']} (UTC), read at {document['read_at']} from {source.where}")
    for name, chart in document["charts"].items():
        print()
        print(f"{name}: {chart['source']}; {chart['requests']} request(s)")
        print(_table(chart["rows"]) if chart["rows"] else "  (no data)")
    return 0


def _table(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned text table; hourly rows show the hour (``HH:00``) only."""
    columns = list(rows[0])
    cells = [[_cell(column, row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  " + "  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  " + "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def _cell(column: str, value: Any) -> str:
    if column == "hour" and isinstance(value, str):
        return value[11:16]
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)
