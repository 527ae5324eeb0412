"""``pipeline bench analytics``: the figures are complete and self-consistent. Speed is never asserted."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from analytics.metrics import METRIC_NAMES
from tools.cli.main import main

pytestmark = pytest.mark.flink

EVENTS = 3_000


@pytest.fixture
def report(flink: dict[str, str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    # GIVEN a small run through the CLI, on the session's Flink cluster, as a machine would call it
    status = main(["bench", "analytics", "--events", str(EVENTS), "--json"])
    captured = capsys.readouterr()
    # THEN it succeeds, prints one JSON object and notes its progress on stderr
    assert status == 0, captured.err
    assert "the job over zero events" in captured.err
    (line,) = captured.out.splitlines()
    doc = orjson.loads(line)
    assert isinstance(doc, dict)
    return doc


def test_the_figures_are_there_and_add_up(report: dict[str, Any]) -> None:
    assert report["events"] == EVENTS
    assert report["verified"] is True
    flink, reference = report["flink"], report["reference"]
    for figures in (flink, reference):
        assert all(isinstance(v, float) and v >= 0 for v in figures.values()), figures
    # processing is the job minus its start-up (the same job over no events), and events/s follows from it
    assert flink["processing_s"] == pytest.approx(max(flink["job_s"] - flink["empty_job_s"], 1e-9))
    assert flink["events_per_s"] == pytest.approx(EVENTS / flink["processing_s"])
    assert reference["events_per_s"] == pytest.approx(EVENTS / reference["seconds"])
    assert set(report["items"]) == set(METRIC_NAMES)
    assert report["items"]["product_views_1m"] > 0
    assert report["versions"]["apache_flink"].startswith("2.2")
    target = report["targets"]["flink_vs_reference"]
    assert target["measured"] == pytest.approx(flink["events_per_s"] / reference["events_per_s"])
