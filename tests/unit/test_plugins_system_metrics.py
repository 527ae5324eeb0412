"""The system-metrics plugin: escaped series keys, and per-minute count, sum, max and min."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from pipeline.events import SystemMetricData
from pipeline.plugins import BatchContext, SystemMetricsPlugin
from tests.plugin_cases import T0, make_event
from tools.oracle import apply_effects


@pytest.mark.parametrize(
    ("name", "dimensions", "expected"),
    [
        pytest.param("cpu", {"service": "api", "region": "eu"}, "cpu|region=eu,service=api", id="sorted-by-key"),
        pytest.param("cpu", {}, "cpu|", id="no-dimensions"),
        pytest.param("a|b", {"k=": "v,%"}, "a%7Cb|k%3D=v%2C%25", id="separators-escaped"),
    ],
)
def test_metric_key(name: str, dimensions: dict[str, str], expected: str) -> None:
    # GIVEN a metric name and dimensions WHEN keyed THEN the canonical, injective series key
    assert SystemMetricData(name, Decimal(1), "u", dimensions).series_key() == expected


def test_escaping_keeps_different_series_apart() -> None:
    # GIVEN two series whose naive keys would collide WHEN keyed THEN different keys
    one = SystemMetricData("a", Decimal(1), "u", {"b": "c,d=e"})
    two = SystemMetricData("a", Decimal(1), "u", {"b": "c", "d": "e"})
    assert one.series_key() != two.series_key()


def test_system_metric_per_minute_count_sum_max_min() -> None:
    # GIVEN three values of one series, two in the same minute
    data = [("12.5", 0), ("7.25", 30), ("100", 75)]
    stream = [
        make_event(SystemMetricData("lat", Decimal(v), "ms", {"s": "a"}), T0 + timedelta(seconds=s), f"e-{i}", None)
        for i, (v, s) in enumerate(data)
    ]
    # WHEN folded
    tables = apply_effects(e for effects in SystemMetricsPlugin().effects(stream, BatchContext()) for e in effects)
    # THEN per minute: exact Decimal sum, count, max and min
    minute = (("metric_key", "lat|s=a"), ("minute", "2026-11-24T10:15"))
    assert tables["system_metrics"][minute] == {
        "metric_key": "lat|s=a",
        "minute": "2026-11-24T10:15",
        "count": 2,
        "sum": Decimal("19.75"),
        "max": Decimal("12.5"),
        "min": Decimal("7.25"),
    }
    assert tables["system_metrics"][(minute[0], ("minute", "2026-11-24T10:16"))]["count"] == 1
