"""An event as the flat row the SQL reads: exact values, or a rejection that says why."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from analytics.rows import EVENT_COLUMNS, EventRow, RowRejection, event_row
from pipeline.events import Event
from tests.analytics.events import activity, at, order, unvalidated, view


def test_a_view_keeps_its_product_user_and_duration_to_the_millisecond() -> None:
    # GIVEN a view 1.5 ms into a second with a duration of 12.3456 s
    event = view("e-1", at(7, micro=1_500), "p-9", user="u-2", duration=12.3456)
    # WHEN it becomes a row
    row = event_row(event)
    # THEN times are exact microseconds and floored milliseconds, the duration rounded half up to ms
    assert isinstance(row, EventRow)
    assert row.event_us == int(at(7).timestamp()) * 1_000_000 + 1_500
    assert row.event_ms == row.event_us // 1000
    assert (row.event_type, row.product_id, row.user_id) == ("product_view", "p-9", "u-2")
    assert row.session_duration == Decimal("12.346")
    assert (row.order_id, row.total_amount, row.status) == (None, None, None)
    assert len(row) == len(EVENT_COLUMNS)


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param(3, Decimal("3.000"), id="int"),
        pytest.param(0.0005, Decimal("0.001"), id="half-up"),
        pytest.param(0.0004, Decimal("0.000"), id="down"),
    ],
)
def test_durations_are_seconds_to_the_millisecond(duration: float | None, expected: Decimal | None) -> None:
    row = event_row(view("e-1", at(), "p-1", duration=duration))
    assert isinstance(row, EventRow)
    assert row.session_duration == expected


def test_an_order_keeps_its_amount_exactly_and_its_status_as_sent() -> None:
    row = event_row(order("e-1", at(), "o-1", "Completed", total="19.999999"))
    assert isinstance(row, EventRow)
    assert (row.order_id, row.status, row.total_amount) == ("o-1", "Completed", Decimal("19.999999"))
    assert row.product_id is None


def test_other_types_carry_only_the_envelope() -> None:
    row = event_row(activity("e-1", at(), user="u-9"))
    assert isinstance(row, EventRow)
    assert row.event_type == "user_activity"
    assert row.user_id == "u-9"
    assert row[5:] == (None,) * 5


def test_times_before_the_epoch_floor_to_the_millisecond_below() -> None:
    row = event_row(view("e-1", datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), "p-1"))
    assert isinstance(row, EventRow)
    assert (row.event_us, row.event_ms) == (-1, -1)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        pytest.param(
            unvalidated(order("e-1", at(), "o-1", "created"), total_amount=Decimal("0.00000000001")),
            "total_amount",
            id="eleven-places",
        ),
        pytest.param(
            unvalidated(order("e-1", at(), "o-1", "created"), total_amount=Decimal("1E+20")),
            "total_amount",
            id="too-large",
        ),
        pytest.param(
            unvalidated(view("e-1", at(), "p-1"), session_duration=1e15), "session_duration", id="endless-session"
        ),
    ],
)
def test_values_the_sql_types_cannot_carry_are_rejected_with_the_reason(event: Event, field: str) -> None:
    # WHEN an exact value would have to be rounded or would overflow THEN the event is a rejection, a value
    row = event_row(event)
    assert isinstance(row, RowRejection)
    assert row.event_id == "e-1"
    assert field in row.reason
