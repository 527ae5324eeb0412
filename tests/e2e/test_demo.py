"""End to end on the embedded stack: the template deployed, producer -> stream -> consumer -> tables.

These run the main job as users run it (``pipeline demo``) against the session's emulator, and check
its verification and its JSON summary.
"""

from __future__ import annotations

import base64
import gzip
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from analytics.flink import unavailable_reason
from analytics.reference import expected_windows
from pipeline.events import decode_event
from pipeline.exceptions import EventValidationError
from pipeline.settings import Settings, aws_client
from tools.generate import generate_events
from tools.local.demo_windows import DEFAULT_LATENESS
from tools.local.stack import destroy

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).resolve().parents[2]
MIXED = ROOT / "tests" / "events" / "demo_mixed_input.ndjson"
EDGE_CASES = ROOT / "tests" / "events" / "edge_cases.ndjson"


def _demo(emulator: Settings, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """``pipeline demo --json`` on the session's emulator; windows by the reference unless ``args`` say."""
    assert emulator.endpoint_url is not None
    command = [str(Path(sys.executable).parent / "pipeline"), "demo", "--json", "--endpoint-url", emulator.endpoint_url]
    if "--windows" not in args:
        args = (*args, "--windows", "reference")  # one test below runs Flink; the others need not wait for it
    result = subprocess.run(
        [*command, "--state-dir", str(tmp_path), *args], capture_output=True, timeout=600, check=False
    )
    assert result.stdout, result.stderr.decode()[-3000:]
    return result.returncode, orjson.loads(result.stdout)


def test_mixed_input_gives_exact_metrics_and_one_bad_row_per_malformed_line(emulator: Settings, tmp_path: Path) -> None:
    # GIVEN a file with malformed lines, duplicate event ids, events hours out of order, unknown types
    # WHEN the main job runs it through the deployed pipeline
    status, summary = _demo(emulator, tmp_path, "--input", str(MIXED), "--format", "gzip-batch")
    # THEN the tables equal the counts computed from the unique valid events, and each of the 6
    # malformed lines is one bad row with a reason and its raw bytes
    assert summary["problems"] == []
    assert status == 0
    assert summary["verified"] is True
    assert summary["malformed_sent"] == 6
    assert len(summary["bad_rows"]) == 6
    assert all(row["reason"] and row["raw_base64"] for row in summary["bad_rows"])
    assert summary["item_counts"]["product_metrics"] > 0


def test_every_edge_case_through_the_deployed_pipeline(emulator: Settings, tmp_path: Path) -> None:
    # GIVEN the edge-case corpus: every order status, values at the limits, resends, and 23 poison lines
    # WHEN the main job runs it through the deployed pipeline
    status, summary = _demo(emulator, tmp_path, "--input", str(EDGE_CASES), "--format", "gzip-batch")
    # THEN no function error, the tables equal the oracle of the unique valid events, and each poison line
    # is one bad row whose reason names the field it broke
    assert summary["problems"] == []
    assert status == 0
    assert summary["function_errors"] == 0
    assert summary["malformed_sent"] == 23
    reasons = sorted(row["reason"] for row in summary["bad_rows"])
    assert len(reasons) == 23
    expected_fields = []
    for line in EDGE_CASES.read_bytes().splitlines():
        if line.startswith(b"{") and b'"_expect"' in line:
            expected_fields.append(orjson.loads(line)["_expect"])
    for field in expected_fields:
        assert any(field in reason for reason in reasons), field
    statuses = {item["time_bucket"].split("#")[-1] for item in summary["tables"]["order_metrics"]}
    assert {"pending", "placed", "shipped", "refunded", "completed", "cancelled"} <= statuses


@pytest.mark.parametrize("fmt", ["json", "kpl-gzip"])
def test_faults_do_not_change_the_metrics(emulator: Settings, tmp_path: Path, fmt: str) -> None:
    # GIVEN injected PutRecords failures, throttles, DynamoDB throttles and handler crashes
    status, summary = _demo(emulator, tmp_path, "--events", "2500", "--fault-rate", "0.1", "--format", fmt)
    # THEN the faults happened and the verification still passes
    faults = summary["faults"]
    assert sum(faults.values()) > 0
    assert summary["problems"] == []
    assert status == 0
    assert summary["events_sent"] + summary["order_events_in"] == 2500
    assert summary["tables"]["order_metrics"]


def test_generated_orders_go_through_the_stores_and_each_committed_order_is_counted_once(
    emulator: Settings, tmp_path: Path
) -> None:
    # GIVEN a demo of generated events with little stock, so that some orders are refused
    status, summary = _demo(emulator, tmp_path, "--events", "3000", "--stock", "3")
    assert status == 0, summary["problems"]
    shop, orders = summary["shop"], summary["orders"]
    # THEN the users and products were seeded, orders went to both stores, and some were rejected for stock
    assert shop["users"] > 0 and shop["products"] > 0
    assert set(shop["placed"]) == {"single_table", "sql"}
    assert shop["rejected"]["stock"] > 0
    committed = sum(shop["committed"].values())
    assert sum(shop["placed"].values()) == committed + sum(shop["rejected"].values())
    # AND no order event of the input was published: the producer sent the rest, CDC the committed changes
    generated = list(generate_events(3000, 1))
    assert summary["order_events_in"] == sum(1 for e in generated if e.event_type.value == "order_event")
    assert summary["events_sent"] == 3000 - summary["order_events_in"]
    changes = committed + sum(shop["status_changes"].values())
    assert shop["bridged"] + shop["relayed"] == changes == orders["order_events"]
    # AND the metrics counted each committed order once, with its revenue, per day and per hour
    assert orders["orders"] == orders["counted_daily"] == orders["counted_hourly"] == committed
    assert orders["revenue"] == orders["revenue_daily"] == orders["revenue_hourly"]
    assert orders["problems"] == []
    assert summary["archive_events"] == summary["events_sent"] + changes


def test_the_summary_carries_the_tables_for_other_programs(emulator: Settings, tmp_path: Path) -> None:
    status, summary = _demo(emulator, tmp_path, "--events", "500")
    assert status == 0
    for table, items in summary["tables"].items():
        assert summary["item_counts"][table] == len(items)
    assert {"producer", "records_consumed", "dynamodb_requests", "elapsed_s", "bad_rows"} <= summary.keys()


def test_the_summary_carries_the_windows_of_the_archive_verified_by_flink_where_it_runs(
    emulator: Settings, tmp_path: Path
) -> None:
    # GIVEN a demo of 1,500 generated events with the windows on (the default: Flink where it can run)
    status, summary = _demo(emulator, tmp_path, "--events", "1500", "--windows", "flink", "--no-stores")
    assert status == 0, summary["problems"]
    windows = summary["windows"]
    # THEN its windows are the reference's over the same events, computed here independently
    events = sorted(generate_events(1500, 1), key=lambda event: event.timestamp)
    expected = expected_windows(events, DEFAULT_LATENESS)
    by_metric = Counter(str(item["metric"]) for item in expected.items.values())
    assert windows["items"] == dict(by_metric)
    assert len(windows["rows"]) == len(expected.items)
    assert windows["late_events"] == len(expected.late)
    # AND Flink ran and its table equals the reference, or the summary says why it could not run
    if unavailable_reason() is None:
        assert (windows["engine"], windows["problems"], windows["written"]) == ("flink", [], len(expected.items))
    else:
        assert windows["engine"] == "reference"
        assert windows["why_not_flink"]


def test_the_archive_holds_exactly_the_valid_events_and_the_errors_keep_their_bytes(
    emulator: Settings, tmp_path: Path
) -> None:
    # GIVEN the mixed input run through the deployed pipeline, the stack kept for reading
    status, summary = _demo(emulator, tmp_path, "--input", str(MIXED), "--format", "kpl-gzip", "--keep")
    assert status == 0, summary["problems"]
    bucket = summary["archive_bucket"]
    try:
        # WHEN the archive is read back with `pipeline archive cat`
        assert emulator.endpoint_url is not None
        cat = subprocess.run(
            [str(Path(sys.executable).parent / "pipeline"), "archive", "cat", "--bucket", bucket],
            env={**os.environ, "PIPELINE_ENDPOINT_URL": emulator.endpoint_url},
            capture_output=True,
            timeout=300,
            check=True,
        )
        archived = sorted(orjson.loads(line)["event_id"] for line in cat.stdout.splitlines())
        # THEN it is exactly the multiset of valid event ids sent (a duplicate sent twice is archived twice)
        valid_ids, malformed = [], []
        for line in MIXED.read_bytes().splitlines():
            try:
                valid_ids.append(decode_event(line).event_id)
            except EventValidationError:
                malformed.append(line)
        assert archived == sorted(valid_ids)
        # AND every malformed line sits under errors/ with its raw bytes
        s3 = aws_client("s3", emulator)
        raws: set[bytes] = set()
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix="errors/").get("Contents", []):
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            raws.update(base64.b64decode(orjson.loads(line)["rawData"]) for line in body.splitlines())
        assert len(malformed) == 6
        assert set(malformed) <= raws
    finally:
        destroy(emulator, summary["stack"].removeprefix("event-pipeline-"), empty_buckets=True)
