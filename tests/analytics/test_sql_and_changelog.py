"""The SQL files and the local sinks' changelog: what the job is made of and how its output is read back."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from analytics.changelog import fold
from analytics.errors import SinkOutputError
from analytics.metrics import METRICS, metric_of
from analytics.sqlfiles import QUERY_FILES, statements, watermark_delay

_VIEW = re.compile(r"CREATE TEMPORARY VIEW (\w+) AS")


def test_every_metric_is_a_view_of_the_query_files_and_every_window_is_a_table_function() -> None:
    # GIVEN every statement of the query files, in order
    sql = [statement for name in QUERY_FILES for statement in statements(name)]
    views = [match[1] for statement in sql if (match := _VIEW.match(statement))]
    # THEN each metric is a view, defined once, and no statement is anything but a view
    assert len(views) == len(sql) == len(set(views))
    assert {spec.name for spec in METRICS} <= set(views)
    # AND the windows are window table functions on the declared rowtime; lateness is decided once
    text = "\n".join(sql)
    assert "TABLE(TUMBLE(TABLE on_time, DESCRIPTOR(event_time), INTERVAL '1' MINUTE))" in text
    assert "TABLE(HOP(TABLE on_time, DESCRIPTOR(event_time), INTERVAL '1' MINUTE, INTERVAL '5' MINUTE))" in text
    assert text.count("CURRENT_WATERMARK(event_time)") == 3
    assert "$" not in text and "--" not in text


def test_a_placeholder_without_a_value_is_an_error_not_sql() -> None:
    with pytest.raises(KeyError, match="columns"):
        statements("source_archive.sql", {"path": "file:///x", "watermark_delay": "INTERVAL '1' SECOND"})


@pytest.mark.parametrize(
    ("lateness", "sql"),
    [
        pytest.param(timedelta(0), "INTERVAL '0 00:00:00.000' DAY TO SECOND(3)", id="zero"),
        pytest.param(timedelta(milliseconds=1), "INTERVAL '0 00:00:00.001' DAY TO SECOND(3)", id="one-ms"),
        pytest.param(timedelta(minutes=2), "INTERVAL '0 00:02:00.000' DAY TO SECOND(3)", id="two-minutes"),
        pytest.param(timedelta(days=3, hours=5, seconds=7.5), "INTERVAL '3 05:00:07.500' DAY TO SECOND(3)", id="days"),
    ],
)
def test_the_allowed_lateness_is_an_interval_to_the_millisecond(lateness: timedelta, sql: str) -> None:
    assert watermark_delay(lateness) == sql


@pytest.mark.parametrize(
    "lateness",
    [
        pytest.param(timedelta(milliseconds=-1), id="negative"),
        pytest.param(timedelta(microseconds=1500), id="sub-millisecond"),
        pytest.param(timedelta(days=100), id="hundred-days"),
    ],
)
def test_a_lateness_sql_cannot_express_is_refused(lateness: timedelta) -> None:
    with pytest.raises(ValueError, match="allowed lateness"):
        watermark_delay(lateness)


def _row(sk: str, count: int) -> dict[str, object]:
    return {
        "pk": "late_events_1h#order_event",
        "sk": sk,
        "metric": "late_events_1h",
        "window_start": sk,
        "window_end": "e",
        "event_type": "order_event",
        "late_events": count,
    }


def _write(directory: Path, name: str, changes: list[dict[str, object]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(b"".join(orjson.dumps(change) + b"\n" for change in changes))


def test_folding_a_changelog_keeps_the_last_image_of_each_key_and_drops_deleted_keys(tmp_path: Path) -> None:
    # GIVEN a count that goes 1 -> 2 (an update: old image deleted, new created) and a key deleted, in two files
    _write(
        tmp_path,
        "part-5e1f-0-0",
        [
            {"before": None, "after": _row("h1", 1), "op": "c"},
            {"before": _row("h1", 1), "after": None, "op": "d"},
            {"before": None, "after": _row("h2", 7), "op": "c"},
        ],
    )
    _write(
        tmp_path,
        "part-5e1f-0-1",
        [{"before": None, "after": _row("h1", 2), "op": "c"}, {"before": _row("h2", 7), "after": None, "op": "d"}],
    )
    # WHEN folded THEN what an upsert store would hold remains
    items = fold(metric_of("late_events_1h"), tmp_path)
    assert items == {("late_events_1h#order_event", "h1"): _row("h1", 2)}


def test_decimals_are_read_exactly(tmp_path: Path) -> None:
    row = {
        "pk": "orders_1h",
        "sk": "h",
        "metric": "orders_1h",
        "window_start": "h",
        "window_end": "e",
        "orders": 1,
        "revenue": 0.1,
        "customers": 1,
        "completed_orders": 0,
        "completed_revenue": 0.3,
    }
    (tmp_path / "part-1-0-0").write_bytes(
        b'{"before":null,"after":' + orjson.dumps(row).replace(b"0.1", b"0.100000") + b',"op":"c"}\n'
    )
    (item,) = fold(metric_of("orders_1h"), tmp_path).values()
    assert (item["revenue"], item["completed_revenue"]) == (Decimal("0.100000"), Decimal("0.3"))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param(".part-5e1f-0-0.inprogress.1", b"", id="unfinished-file"),
        pytest.param("part-5e1f-0-0", b"not json\n", id="not-json"),
        pytest.param("part-5e1f-0-0", b'{"op": "u", "after": {}}\n', id="not-a-change"),
        pytest.param("part-5e1f-0-0", b'{"op": "c", "after": {"pk": "x"}}\n', id="not-the-metric"),
    ],
)
def test_a_damaged_sink_directory_is_an_error(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SinkOutputError):
        fold(metric_of("late_events_1h"), tmp_path)
