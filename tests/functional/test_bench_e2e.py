"""``pipeline bench e2e``: the figures are complete and consistent, the project's run verified, the stacks gone.

Speed is not asserted: a timed test fails on a busy machine and says nothing about the code. One small
run on the session's emulator feeds the tests that need the emulator.
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any

import orjson
import pytest

from load.e2e_bench.figures import EndToEndBenchResult, EndToEndFigures, Verification
from load.e2e_bench.report import render_table
from pipeline.codecs import RecordFormat
from pipeline.settings import Settings
from tools.cli.main import main
from tools.local.stack import describe

EVENTS = 600
SEED_EVENTS = 150
FIGURES = (
    "wall_s",
    "events_per_s",
    "dynamodb_requests",
    "dynamodb_requests_per_event",
    "put_records_calls",
    "put_records_calls_per_event",
    "invocations",
    "invocations_per_event",
    "kinesis_records",
)


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
                "e2e",
                "--events",
                str(EVENTS),
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


@pytest.mark.emulator
def test_the_project_run_is_verified_against_the_oracle(report: dict[str, Any]) -> None:
    # THEN the project's tables equal the oracle's, and nothing went to bad rows or the on-failure queue
    verification = report["verification"]
    assert verification["passed"] is True
    assert verification["problems"] == []
    assert sum(verification["item_counts"].values()) > 0
    assert verification["bad_rows"] == 0
    assert verification["discarded_batches"] == 0
    assert verification["fulfilment_messages"] >= 0


@pytest.mark.emulator
def test_both_runs_report_every_figure(report: dict[str, Any]) -> None:
    # THEN each run consumed its own events with the default format, and every figure is a consistent number
    assert (report["benchmark"], report["events"], report["seed_events"]) == ("e2e", EVENTS, SEED_EVENTS)
    assert report["record_format"] == RecordFormat.GZIP_BATCH.value
    assert report["embedded_emulator"] is False
    for name, events in (("project", EVENTS), ("seed_style", SEED_EVENTS)):
        figures = report[name]
        assert figures["events"] == events
        for key in FIGURES:
            assert _number(figures[key]), (name, key)
        assert figures["wall_s"] > 0
        assert figures["events_per_s"] == pytest.approx(events / figures["wall_s"])
        assert min(figures["kinesis_records"], figures["put_records_calls"], figures["invocations"]) >= 1
        assert figures["dynamodb_requests"] > 0
        for count in ("dynamodb_requests", "put_records_calls", "invocations"):
            assert figures[f"{count}_per_event"] == pytest.approx(figures[count] / events)
        assert figures["function_errors"] == 0


@pytest.mark.emulator
def test_the_seed_style_makes_a_blocking_call_or_more_per_event(report: dict[str, Any]) -> None:
    # THEN the source design's consumer asked DynamoDB at least once per event
    assert report["seed_style"]["dynamodb_requests"] >= SEED_EVENTS


@pytest.mark.emulator
def test_the_ratios_follow_from_the_figures(report: dict[str, Any]) -> None:
    # THEN project/seed is the ratio of events/s and of each count per event
    p, s, ratios = report["project"], report["seed_style"], report["project_to_seed_style"]
    assert ratios["events_per_s"] == pytest.approx(p["events_per_s"] / s["events_per_s"])
    for key in ("dynamodb_requests_per_event", "put_records_calls_per_event", "invocations_per_event"):
        assert ratios[key] == pytest.approx(p[key] / s[key])


@pytest.mark.emulator
def test_both_stacks_are_deleted_after_the_run(report: dict[str, Any], emulator: Settings) -> None:
    # THEN the two fresh stacks were different, and neither is left behind
    stacks = {report["project"]["stack"], report["seed_style"]["stack"]}
    assert len(stacks) == 2
    for stack in stacks:
        assert describe(emulator, stack.removeprefix("event-pipeline-")) is None


def test_seed_events_above_events_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the seed style would get more events than the workload has
    status = main(["bench", "e2e", "--events", "10", "--seed-events", "20", "--endpoint-url", "http://127.0.0.1:9"])
    # THEN it stops before touching any endpoint, with exit status 2
    assert status == 2
    assert "seed events at most events" in capsys.readouterr().err


def test_the_table_shows_both_runs_and_the_ratio() -> None:
    # GIVEN a result with round numbers
    def figures(events: int, wall_s: float, requests: int) -> EndToEndFigures:
        return EndToEndFigures("event-pipeline-x", events, 4, wall_s, requests, 1, 4, 0, 0)

    result = EndToEndBenchResult(
        1_000,
        100,
        1,
        RecordFormat.GZIP_BATCH,
        "3.11",
        "http://127.0.0.1:1",
        embedded=False,
        project=figures(1_000, 0.5, 40),
        seed_style=figures(100, 0.5, 200),
        verification=Verification({"order_metrics": 3}, 1, 0, 0, ()),
    )
    # WHEN it is rendered
    table = render_table(result)
    # THEN each figure is on its row, the ratio is project over seed, and the verification is stated
    assert "events/s end to end" in table
    assert "2,000" in table
    assert "10.0x" in table  # 2,000 vs 200 events/s
    assert "0.0200x" in table  # 0.04 vs 2.0 DynamoDB requests per event
    assert "verification PASSED" in table
