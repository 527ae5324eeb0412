"""``pipeline bench codec``: the figures are complete and self-consistent. Speed targets are not asserted.

A timed test fails on a busy machine and says nothing about the code; the benchmark prints its targets
as PASS/FAIL for a person to read instead.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pipeline.codecs import RecordFormat
from pipeline.events import EventType
from tools.cli.main import main

EVENTS = 2_000
SHARD_BYTES_PER_S = 1024 * 1024  # Kinesis' per-shard write limits, restated here on purpose
SHARD_RECORDS_PER_S = 1_000
FORMATS = [pytest.param(f.value, id=f.value) for f in RecordFormat]


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    # GIVEN a small run of the benchmark through the CLI, as a machine would call it
    status = main(["bench", "codec", "--events", str(EVENTS), "--repeat", "1", "--json"])
    captured = capsys.readouterr()
    # THEN it succeeds, prints exactly one JSON object on stdout and notes its progress on stderr
    assert status == 0
    assert "timing round 1/1" in captured.err
    lines = captured.out.splitlines()
    assert len(lines) == 1
    doc = orjson.loads(lines[0])
    assert isinstance(doc, dict)
    return doc


def test_every_format_has_positive_figures(report: dict[str, Any]) -> None:
    # WHEN the benchmark reports THEN every format is there, each figure a positive number
    assert report["events"] == EVENTS
    assert report["baseline_us_per_event"] > 0
    assert list(report["formats"]) == [f.value for f in RecordFormat]
    for name, figures in report["formats"].items():
        for key in (
            "records",
            "total_bytes",
            "events_per_record",
            "bytes_per_event",
            "encode_us_per_event",
            "decode_us_per_event",
            "ratio_to_baseline",
            "capacity_events_per_s",
        ):
            value = figures[key]
            assert isinstance(value, int | float) and not isinstance(value, bool), (name, key)
            assert value > 0, (name, key)
        assert figures["capacity_bound_by"] in {"bytes", "records"}
        is_kpl = name in {RecordFormat.KPL.value, RecordFormat.KPL_GZIP.value}
        assert (figures["kpl_breakdown"] is not None) is is_kpl
        if is_kpl:
            assert all(v > 0 for v in figures["kpl_breakdown"].values())


@pytest.mark.parametrize("name", FORMATS)
def test_capacity_follows_from_bytes_and_records(report: dict[str, Any], name: str) -> None:
    # GIVEN one format's record count and bytes
    figures = report["formats"][name]
    bytes_per_event = figures["total_bytes"] / EVENTS
    events_per_record = EVENTS / figures["records"]
    # WHEN the shard's two limits are applied by hand
    by_bytes = SHARD_BYTES_PER_S / bytes_per_event
    by_records = SHARD_RECORDS_PER_S * events_per_record
    # THEN the reported capacity is the lower one, and names the limit that binds
    assert figures["bytes_per_event"] == pytest.approx(bytes_per_event)
    assert figures["events_per_record"] == pytest.approx(events_per_record)
    assert figures["capacity_events_per_s"] == pytest.approx(min(by_bytes, by_records))
    assert figures["capacity_bound_by"] == ("bytes" if by_bytes < by_records else "records")


def test_json_carries_one_event_per_record(report: dict[str, Any]) -> None:
    # WHEN events go one per record THEN the 1,000 records/s limit caps a shard at 1,000 events/s at most
    figures = report["formats"][RecordFormat.JSON.value]
    assert figures["records"] == EVENTS
    assert figures["capacity_events_per_s"] <= 1_000
    assert report["json_single_event_capacity_events_per_s"] == figures["capacity_events_per_s"]


def test_densest_format_and_targets_are_reported(report: dict[str, Any]) -> None:
    # THEN the densest format is the one with the highest capacity, and each target is a verdict on a number
    capacities = {name: f["capacity_events_per_s"] for name, f in report["formats"].items()}
    assert report["densest_format"] == max(capacities, key=capacities.__getitem__)
    assert set(report["targets"]) == {"json_decode_ratio", "kpl_decode_ratio", "densest_capacity"}
    for target in report["targets"].values():
        assert isinstance(target["passed"], bool)
        assert target["measured"] > 0
    assert report["targets"]["densest_capacity"]["measured"] == capacities[report["densest_format"]]


def test_json_breakdown_covers_every_event_type(report: dict[str, Any]) -> None:
    # THEN each event type of the workload has its own json figures, and together they are all events
    by_type = report["json_by_event_type"]
    assert set(by_type) == {t.value for t in EventType}
    assert sum(t["events"] for t in by_type.values()) == EVENTS
    for figures in by_type.values():
        assert figures["events"] > 0
        assert figures["ratio_to_baseline"] > 0


def test_no_benchmark_named_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN 'pipeline bench' is run without a benchmark THEN argparse reports a usage error (exit 2)
    with pytest.raises(SystemExit) as exit_info:
        main(["bench"])
    assert exit_info.value.code == 2
    assert "BENCHMARK" in capsys.readouterr().err
