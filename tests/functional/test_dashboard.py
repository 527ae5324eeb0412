"""The read API, ``pipeline metrics`` and ``pipeline dashboard`` against a live local stack.

The stack (``live_stack``, one ``pipeline up`` for every reader test) consumes events produced with
``pipeline produce``; the charts are checked against the oracle (``tools.oracle``) computed from the
same events, the analytics windows against the Python reference's items written to the stack's
``window_metrics`` table, and the dashboard in Debian's chromium (headless, through Selenium and
``/usr/bin/chromedriver``) against what the read API returns. DynamoDB requests are counted with a
botocore event hook on the very client the readers use.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from analytics.reference import expected_windows
from analytics.store import write_items
from pipeline.events import Event
from pipeline.readapi.cloudwatch import CloudWatchReader
from pipeline.readapi.tables import MetricsReader
from pipeline.settings import aws_client
from tests.live_stack import LiveStack, wait_for
from tools.dashboard.server import DashboardServer
from tools.dashboard.source import collect, resolve_source
from tools.generate import generate_events
from tools.local.stack import describe
from tools.oracle import expected_tables
from tools.verify import differences, numbers_as_decimal, scan_tables

pytestmark = pytest.mark.emulator

DAY = date(2026, 11, 24)  # the reference workload's day


class _Requests:
    """Every DynamoDB operation a client makes: ``(operation, table, index)``, counted by a botocore hook."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-parameter-build.dynamodb", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self._lock:
            self.calls.append((model.name, params.get("TableName", ""), params.get("IndexName")))

    def take(self) -> Counter[tuple[str, str, str | None]]:
        with self._lock:
            taken, self.calls = Counter(self.calls), []
        return taken


@pytest.fixture(scope="module")
def sent(live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    """2,000 reference events produced and counted; their windows written as the analytics job writes them."""
    events = list(generate_events(2_000, 11))
    live_stack.produce(events, tmp_path_factory.mktemp("events") / "events.ndjson")
    _wait_counted(live_stack, events)
    windows = expected_windows(events, timedelta(seconds=30)).items.values()
    write_items(aws_client("dynamodb", live_stack.settings), live_stack.tables.window_metrics, windows)
    return events


def _wait_counted(stack: LiveStack, events: list[Event]) -> None:
    """Until every metrics table equals the oracle's for ``events`` (consistent scans: the test's own check)."""
    info = describe(stack.settings, stack.stage)
    assert info is not None
    expected = numbers_as_decimal(expected_tables(events))
    dynamodb = aws_client("dynamodb", stack.settings)
    wait_for("tables", lambda: differences(scan_tables(dynamodb, info.resources()), expected, limit=5))


def _orders(reader: MetricsReader) -> list[tuple[int, Decimal]]:
    return [(row.orders, row.revenue) for row in reader.orders_per_hour(DAY).rows]


def _oracle_hourly_orders(events: list[Event]) -> list[tuple[int, Decimal]]:
    items = expected_tables(events)["order_metrics"]
    by_bucket = {
        dict(key)["time_bucket"]: item for key, item in items.items() if dict(key)["metric_type"] == "hourly_orders"
    }
    out = []
    for hour in range(24):
        item = by_bucket.get(f"{DAY.isoformat()}#{hour:02d}", {})
        out.append((int(item.get("order_count", 0)), Decimal(item.get("total_revenue", 0))))
    return out


def _oracle_views(events: list[Event]) -> dict[str, dict[str, Any]]:
    items = expected_tables(events)["product_metrics"]
    return {
        str(dict(key)["product_id"]): item for key, item in items.items() if dict(key)["metric_date"] == DAY.isoformat()
    }


def test_each_chart_is_one_query_and_equals_the_oracle(live_stack: LiveStack, sent: list[Event]) -> None:
    # GIVEN the read API on a client whose every DynamoDB request is counted
    dynamodb = aws_client("dynamodb", live_stack.settings)
    requests = _Requests(dynamodb)
    reader = MetricsReader(dynamodb, live_stack.tables)
    product_metrics = live_stack.tables.product_metrics
    # WHEN each chart is read THEN it took exactly one Query per page, on its table or index, and no Scan
    orders = reader.orders_per_hour(DAY)
    assert requests.take() == {("Query", live_stack.tables.order_metrics, None): 1} and orders.requests == 1
    views = reader.product_views_per_hour(DAY)
    assert requests.take() == {("Query", product_metrics, "by-view-day"): 1} and views.requests == 1
    top = reader.top_products(DAY, 5)
    assert requests.take() == {("Query", product_metrics, "by-view-day"): 1} and top.requests == 1
    windows = reader.windows(DAY, "orders_1h")
    assert requests.take() == {("Query", live_stack.tables.window_metrics, None): 1} and windows.requests == 1
    # AND every number equals the oracle's (money exact) and the reference's windows
    assert [(r.orders, r.revenue) for r in orders.rows] == _oracle_hourly_orders(sent)
    assert sum(r.revenue for r in orders.rows) > 0
    oracle = _oracle_views(sent)
    for hour, row in enumerate(views.rows):
        assert row.views == sum(int(item.get(f"hour_{hour:02d}", 0)) for item in oracle.values())
    ranked = sorted((int(item["view_count"]) for item in oracle.values()), reverse=True)
    assert [r.views for r in top.rows] == ranked[:5]
    assert all(int(oracle[r.product_id]["view_count"]) == r.views for r in top.rows)
    reference = expected_windows(sent, timedelta(seconds=30)).items
    hours = {k[1]: item for k, item in reference.items() if k[0] == "orders_1h"}
    assert [(w.key, w.values["orders"], w.values["revenue"]) for w in windows.rows] == [
        (sk, item["orders"], item["revenue"]) for sk, item in sorted(hours.items())
    ]
    one = reader.product_views_per_hour(DAY, top.rows[0].product_id)
    assert requests.take() == {("Query", product_metrics, None): 1}
    assert sum(r.views for r in one.rows) == top.rows[0].views


def test_bad_rows_chart_counts_what_the_consumer_rejected_in_one_call(live_stack: LiveStack) -> None:
    # GIVEN the bad rows CloudWatch holds so far (the consumer's BadRows EMF metric, which the live
    # runtime hands to the emulator's CloudWatch as Lambda's log pipeline does)
    cloudwatch = aws_client("cloudwatch", live_stack.settings)
    reader = CloudWatchReader(cloudwatch, live_stack.outputs["ConsumerFunctionName"])
    today = datetime.now(UTC).date()
    before = sum(r.bad_rows for r in reader.bad_rows_per_hour(today).rows)
    # WHEN 9 undecodable records reach the stream
    kinesis = aws_client("kinesis", live_stack.settings)
    junk = [{"Data": b"not an event {" + bytes([i]), "PartitionKey": f"junk-{i}"} for i in range(9)]
    assert kinesis.put_records(StreamName=live_stack.stream, Records=junk).get("FailedRecordCount", 0) == 0

    # THEN the chart, one GetMetricData call, counts exactly 9 more bad rows today, in 24 hourly rows
    def missing() -> list[str]:
        chart = reader.bad_rows_per_hour(today)
        assert chart.requests == 1 and len(chart.rows) == 24
        added = sum(r.bad_rows for r in chart.rows) - before
        return [] if added == 9 else [f"{added} new bad rows charted, 9 expected"]

    wait_for("bad rows charted", missing, timeout=60)


def test_metrics_command_prints_the_read_apis_numbers(live_stack: LiveStack, sent: list[Event]) -> None:
    # WHEN 'pipeline metrics --json' reads the stack 'pipeline up' left in the state dir
    document = orjson.loads(live_stack.cli("metrics", "--day", DAY.isoformat(), "--json").stdout)
    # THEN its charts are the read API's, request counts included
    source = resolve_source(live_stack.state_dir, live_stack.stage)
    expected = collect(source, DAY)
    for name in ("orders", "views", "top", "windows"):
        assert document["charts"][name]["rows"] == expected["charts"][name]["rows"], name
        assert document["charts"][name]["requests"] == 1
    assert Decimal(document["charts"]["orders"]["totals"]["revenue"]) == sum(r for _, r in _oracle_hourly_orders(sent))
    assert document["charts"]["lag"]["rows"], "the live runtime's shards"
    # AND the terminal form names each chart and its request count
    text = live_stack.cli("metrics", "top", "--day", DAY.isoformat(), "--limit", "3").stdout.decode()
    assert "top: Query" in text and "1 request(s)" in text
    assert text.count("p-") == 3


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("Debian's chromium and chromium-driver are needed: './dev setup' installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1500",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or ""))
    try:
        yield driver
    finally:
        driver.quit()


def _page_charts(driver: Any) -> dict[str, dict[str, Any]]:
    """What each Chart.js instance on the page holds (labels, datasets), and its figure's data attributes."""
    script = """
      const out = {};
      for (const figure of document.querySelectorAll('figure[data-chart]')) {
        const chart = Chart.getChart(figure.querySelector('canvas'));
        out[figure.dataset.chart] = chart ? {labels: chart.data.labels, values: chart.data.datasets.map(d => d.data),
          attr: JSON.parse(figure.dataset.values || 'null'), requests: Number(figure.dataset.requests)} : null;
      }
      return out;"""
    charts: dict[str, dict[str, Any]] = driver.execute_script(script)
    return charts


def _refreshes(driver: Any) -> int:
    return int(driver.find_element("id", "status").get_attribute("data-refreshes") or 0)


def test_dashboard_in_chromium_shows_the_read_api_and_refreshes(
    live_stack: LiveStack, sent: list[Event], browser: Any, tmp_path: Path
) -> None:
    # GIVEN the dashboard server on a counted client, and the page open in headless chromium
    dynamodb = aws_client("dynamodb", live_stack.settings)
    requests = _Requests(dynamodb)
    source = resolve_source(live_stack.state_dir, live_stack.stage)
    polls: list[date] = []

    def reader(day: date) -> dict[str, Any]:
        polls.append(day)
        return collect(source, day, dynamodb=dynamodb)

    server = DashboardServer("127.0.0.1", 0, reader, day=DAY, refresh_s=0.5)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    serving.start()
    try:
        browser.get(server.url)
        wait_for("first refresh", lambda: [] if _refreshes(browser) >= 1 else ["no refresh"], timeout=60)
        # THEN every chart shows the read API's numbers
        api = MetricsReader(aws_client("dynamodb", live_stack.settings), live_stack.tables)
        page = _page_charts(browser)
        orders = api.orders_per_hour(DAY).rows
        assert page["orders"]["values"] == [[r.orders for r in orders], [float(r.revenue) for r in orders]]
        assert page["orders"]["attr"] == page["orders"]["values"]
        assert page["orders"]["labels"] == [f"{h:02d}:00" for h in range(24)]
        assert page["views"]["values"] == [[r.views for r in api.product_views_per_hour(DAY).rows]]
        top = api.top_products(DAY).rows
        assert page["top"]["labels"] == [r.product_id for r in top] and page["top"]["values"] == [
            [r.views for r in top]
        ]
        assert page["windows"]["values"] == [[w.values["orders"] for w in api.windows(DAY).rows]]
        assert page["windows"]["values"] != [[]]
        assert set(page["lag"]["labels"]) == set(
            orjson.loads((live_stack.state_dir / "runtime-readers.status.json").read_bytes())["shards"]
        )
        # AND each poll made exactly one Query per table chart (one page each), nothing else
        assert all(page[name]["requests"] == 1 for name in ("orders", "views", "top", "windows"))
        served, calls = len(polls), requests.take()
        assert set(calls) == {
            ("Query", live_stack.tables.order_metrics, None),
            ("Query", live_stack.tables.product_metrics, "by-view-day"),
            ("Query", live_stack.tables.window_metrics, None),
        }
        assert abs(sum(calls.values()) - 4 * served) <= 4, (calls, served)  # a poll may be in flight
        # WHEN more events of the day land
        before = page["views"]["values"]
        more = list(generate_events(1_000, 12))
        live_stack.produce(more, tmp_path / "more.ndjson")
        _wait_counted(live_stack, sent + more)
        # THEN the page shows the new numbers without being reloaded
        fresh = [[r.views for r in api.product_views_per_hour(DAY).rows]]
        assert fresh != before
        wait_for("page refreshed", lambda: [] if _page_charts(browser)["views"]["values"] == fresh else ["old"], 30)
        orders = api.orders_per_hour(DAY).rows
        assert _page_charts(browser)["orders"]["values"][0] == [r.orders for r in orders]
        shot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")  # noqa: T201
    finally:
        server.shutdown()
        server.server_close()


def test_dashboard_command_serves_and_stops_on_sigterm(live_stack: LiveStack) -> None:
    # GIVEN 'pipeline dashboard' started as a user would
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.cli.main", "dashboard", "--stage", live_stack.stage, "--day", DAY.isoformat()],
        env=live_stack.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().decode().strip()
        # THEN it prints a 127.0.0.1 URL whose JSON endpoint answers with every chart
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}api/charts", timeout=30) as response:  # noqa: S310  # our own URL
            document = orjson.loads(response.read())
        assert set(document["charts"]) == {"orders", "views", "top", "windows", "bad-rows", "lag"}
        with urllib.request.urlopen(f"{url}static/vendor/chart.js-4.6.1/chart.umd.min.js", timeout=30) as response:  # noqa: S310
            assert b"Chart.js v4.6.1" in response.read(200)
    finally:
        # WHEN SIGTERM arrives THEN it stops, closing its socket, with one line and no traceback
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and b"stopped" in err and b"Traceback" not in err
