"""``pipeline bench consumer``: the figures are complete and consistent, and the run verified. Speed is not asserted.

A timed test fails on a busy machine and says nothing about the code; the benchmark prints its targets
as PASS/FAIL for a person to read instead. One small run on the session's emulator feeds every test.
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any

import orjson
import pytest

from pipeline.settings import Settings
from tools.cli.main import main

pytestmark = pytest.mark.emulator

EVENTS = 1_500
BATCH_SIZE = 500
SEED_EVENTS = 200
TARGETS = {
    "item_writes_vs_floor",
    "api_calls_per_event",
    "dedup_write_units_per_event",
    "cpu_us_per_event",
    "handler_import_ratio",
    "handler_import_ratio_xray",
}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture(scope="module")
def report(emulator: Settings) -> dict[str, Any]:
    # GIVEN a small run of the benchmark through the CLI against the session's emulator, as a machine calls it
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # module scope: capsys is per test
        status = main(
            [
                "bench",
                "consumer",
                "--events",
                str(EVENTS),
                "--batch-size",
                str(BATCH_SIZE),
                "--seed-events",
                str(SEED_EVENTS),
                "--endpoint-url",
                str(emulator.endpoint_url),
                "--json",
            ]
        )
    # THEN it succeeds and prints exactly one JSON object
    assert status == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    doc = orjson.loads(lines[0])
    assert isinstance(doc, dict)
    return doc


def test_the_run_is_verified_against_the_oracle(report: dict[str, Any]) -> None:
    # THEN the project's tables equal the oracle's, every completed order is queued once, and nothing is a bad row
    verification = report["verification"]
    assert verification["passed"] is True
    assert verification["problems"] == []
    assert verification["items"] > 0
    assert verification["messages_queued"] in (None, verification["messages_expected"])
    assert verification["bad_rows"] == 0
    assert verification["effects_match"] in (True, None)


def test_both_consumers_report_every_figure(report: dict[str, Any]) -> None:
    # THEN each consumer processed its events and every figure is a finite number
    assert report["events"] == EVENTS
    assert report["batch_size"] == BATCH_SIZE
    assert report["embedded_emulator"] is False
    for name, events, invocations in (("project", EVENTS, EVENTS // BATCH_SIZE), ("seed_style", SEED_EVENTS, 1)):
        figures = report[name]
        assert figures["events"] == events
        assert figures["invocations"] >= invocations
        for key in (
            "wall_s",
            "cpu_s",
            "events_per_s",
            "cpu_us_per_event",
            "api_calls",
            "api_calls_per_event",
            "http_attempts_per_event",
            "item_writes",
            "item_writes_per_event",
            "item_reads_per_event",
        ):
            assert _number(figures[key]), (name, key)
            assert figures[key] >= 0, (name, key)
        assert figures["events_per_s"] > 0
        assert figures["api_calls"] == sum(figures["calls"]["calls"].values()) > 0
        assert figures["calls"]["attempts"] >= figures["api_calls"]
        assert figures["emulator_cpu_us_per_event"] is None  # the emulator was given by URL, not started


def test_the_seed_style_makes_one_blocking_call_or_more_per_event(report: dict[str, Any]) -> None:
    # THEN the seed style calls UpdateItem/PutItem/GetItem per event, never a batch call
    seed = report["seed_style"]
    assert set(seed["calls"]["calls"]) <= {"dynamodb.UpdateItem", "dynamodb.PutItem", "dynamodb.GetItem"}
    assert seed["api_calls"] >= SEED_EVENTS
    assert seed["item_writes"] == seed["calls"]["calls"].get("dynamodb.UpdateItem", 0) + seed["calls"]["calls"].get(
        "dynamodb.PutItem", 0
    )


def test_item_writes_are_at_least_the_floor(report: dict[str, Any]) -> None:
    # GIVEN the floor (distinct items each batch touches) and the item writes counted on the wire
    floor, project = report["floor"], report["project"]
    # THEN no writer beats the floor, the per-table figures add up, and the ratio is what it says
    assert floor["batches"] == EVENTS // BATCH_SIZE
    assert floor["items"] == sum(floor["items_by_table"].values()) > 0
    assert floor["items_per_event"] == pytest.approx(floor["items"] / EVENTS)
    assert project["item_writes"] >= floor["items"]
    assert report["item_writes_to_floor"] == pytest.approx(project["item_writes"] / floor["items"])
    assert floor["write_calls"] >= math.ceil(floor["items"] / 25)
    assert floor["cpu_us_per_event"] > 0


def test_the_writer_stats_agree_with_the_wire(report: dict[str, Any]) -> None:
    # THEN the writer's own counts are a part of what the hooks saw: the batch context's reads and the
    # dedup window's items (one BatchWriteItem item each) come on top
    project = report["project"]
    writer, wire = project["writer"], project["calls"]
    assert writer["item_writes"] + report["dedup"]["items"] == wire["item_writes"]
    assert writer["api_calls"] <= project["api_calls"]
    assert writer["reads"] <= wire["item_reads"]
    assert writer["conflicts"] <= wire["statement_errors"]
    if report["verification"]["effects_match"] is not None:  # None: a batch was retried, effects counted twice
        assert project["effects"] == report["floor"]["effects"]


def test_the_dedup_window_is_measured(report: dict[str, Any]) -> None:
    # THEN its items and write units are there, each item a whole number of started kilobytes
    dedup = report["dedup"]
    assert dedup["items"] >= EVENTS // BATCH_SIZE
    assert dedup["write_units"] >= dedup["items"]
    assert dedup["write_units"] <= dedup["items"] + dedup["bytes"] // 1024 + 1
    assert dedup["write_units_per_event"] == pytest.approx(dedup["write_units"] / EVENTS)
    assert dedup["bytes_per_event"] >= 16  # one 16-byte entry per counted event at least


def test_cold_start_and_targets_are_reported(report: dict[str, Any]) -> None:
    # THEN the import times are positive, the ratios follow from them, and every target is a verdict on a number
    cold = report["cold_start"]
    assert cold["rounds"] == 5
    assert 0 < cold["interpreter_s"] < cold["boto3_s"]
    assert cold["ratio"] == pytest.approx(cold["handler_s"] / cold["boto3_s"])
    assert cold["ratio_trace_disabled"] == pytest.approx(cold["handler_trace_disabled_s"] / cold["boto3_s"])
    assert set(report["targets"]) == TARGETS
    for target in report["targets"].values():
        assert isinstance(target["passed"], bool)
        assert _number(target["measured"])
        assert target["comparison"] in {"<=", ">="}


def test_capacity_units_are_metered_on_the_writes_the_wire_saw(report: dict[str, Any]) -> None:
    # GIVEN the capacity-units cases, metered in memory by the same write engine on the same events
    units = report["capacity_units"]
    ours = units[f"json, batch {BATCH_SIZE:,}"]
    # THEN the metered pass makes exactly the item writes counted on the wire (no retries in this run)
    assert ours["item_writes_per_event"] == pytest.approx(report["project"]["item_writes_per_event"], abs=1e-4)
    # AND every write costs at least one unit; the dedup window's units are the wire's within one unit
    # per batch (the metered pass uses Kinesis-length sequence numbers, so its item keys are longer)
    for case in units.values():
        assert case["write_units_per_event"] >= case["item_writes_per_event"] > 0
        assert case["read_units_per_event"] >= 0
    metered, wire = ours["write_units_per_event_by_table"]["event_dedup"], report["dedup"]["write_units_per_event"]
    assert wire <= metered <= wire + 1 / BATCH_SIZE + 1e-9
    # AND the seed style writes at least once per event that writes, in smaller invocations
    assert units["seed style"]["events_per_invocation"] == 1
    assert units["gzip-batch, 6 MB"]["events_per_invocation"] >= ours["events_per_invocation"]
