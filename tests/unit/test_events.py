"""The event model: validation names the field, money stays Decimal, time is aware UTC, wire form round-trips."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.events import Event, EventType, OrderData, event_to_wire, parse_event
from pipeline.events.fastpath import fast_parse
from pipeline.events.validate import checked_parse
from pipeline.exceptions import EventValidationError
from tests.strategies import events


def _order_wire() -> dict[str, Any]:
    return {
        "event_id": "e-1",
        "event_type": "order_event",
        "event_subtype": "order_created",
        "schema_version": 1,
        "timestamp": "2026-11-24T10:15:00.250000+00:00",
        "source": "web",
        "user_id": "u-1",
        "data": {
            "order_id": "o-1",
            "total_amount": "59.97",
            "status": "created",
            "items": [{"product_id": "p-1", "quantity": 3, "price": "19.99"}],
        },
    }


@given(events())
@settings(max_examples=300)
def test_wire_form_round_trips_exactly(event: Event) -> None:
    # GIVEN any valid event WHEN it goes to wire bytes and back THEN it is the same event
    assert parse_event(orjson.loads(orjson.dumps(event_to_wire(event)))) == event


def test_money_is_decimal_and_time_is_aware_utc() -> None:
    # GIVEN an order written with a non-UTC offset and a JSON-number total
    wire = _order_wire()
    wire["timestamp"] = "2026-11-24T12:15:00.25+02:00"
    wire["data"]["total_amount"] = 59.97
    # WHEN it is parsed
    event = parse_event(wire)
    # THEN the total is the exact Decimal the producer wrote and the time is the same instant in UTC
    assert isinstance(event.data, OrderData)
    assert event.data.total_amount == Decimal("59.97")
    assert isinstance(event.data.items[0].price, Decimal)
    assert event.timestamp == datetime(2026, 11, 24, 10, 15, 0, 250000, tzinfo=UTC)
    assert event.timestamp.tzinfo is UTC


def _set(path: str, value: object) -> dict[str, Any]:
    wire = _order_wire()
    node: Any = wire
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return wire


_DELETE = object()


@pytest.mark.parametrize(
    ("wire", "field", "reason_part"),
    [
        pytest.param(_set("event_id", _DELETE), "event_id", "required", id="missing-event-id"),
        pytest.param(_set("event_type", "refund"), "event_type", "unknown event type", id="unknown-type"),
        pytest.param(_set("schema_version", 2), "schema_version", "unsupported", id="future-version"),
        pytest.param(_set("schema_version", True), "schema_version", "unsupported", id="bool-version"),
        pytest.param(_set("timestamp", "2026-11-24T10:15:00"), "timestamp", "offset", id="naive-time"),
        pytest.param(_set("timestamp", "yesterday"), "timestamp", "ISO-8601", id="not-a-time"),
        pytest.param(_set("data.total_amount", "12,50"), "data.total_amount", "decimal", id="bad-money-text"),
        pytest.param(_set("data.total_amount", "-1"), "data.total_amount", "negative", id="negative-money"),
        pytest.param(_set("data.total_amount", "NaN"), "data.total_amount", "finite", id="nan-money"),
        pytest.param(_set("data.total_amount", True), "data.total_amount", "decimal", id="bool-money"),
        pytest.param(_set("data.items", []), "data.items", "non-empty", id="no-items"),
        pytest.param(_set("data.items.0.quantity", 0), "data.items[0].quantity", "positive", id="zero-quantity"),
        pytest.param(_set("data.items.0.quantity", 1.5), "data.items[0].quantity", "positive", id="float-quantity"),
        pytest.param(_set("data.items.0.price", None), "data.items[0].price", "decimal", id="null-price"),
        pytest.param(_set("user_id", 7), "user_id", "string", id="numeric-user"),
        pytest.param(_set("data", []), "data", "object", id="data-list"),
    ],
)
def test_invalid_event_names_field_and_reason(wire: dict[str, Any], field: str, reason_part: str) -> None:
    # GIVEN an event with one bad field WHEN parsed THEN the typed error names that field and why
    with pytest.raises(EventValidationError) as caught:
        parse_event(wire)
    assert caught.value.field == field
    assert reason_part in caught.value.reason


def test_non_object_is_rejected_at_the_root() -> None:
    with pytest.raises(EventValidationError) as caught:
        parse_event([1, 2])
    assert caught.value.field == "$"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_PATHS = [
    (),
    ("event_id",),
    ("event_type",),
    ("schema_version",),
    ("timestamp",),
    ("source",),
    ("user_id",),
    ("event_subtype",),
    ("data",),
    ("data", "product_id"),
    ("data", "order_id"),
    ("data", "total_amount"),
    ("data", "items"),
    ("data", "session_duration"),
    ("data", "activity_type"),
    ("data", "value"),
]


@st.composite
def mutated_wire(draw: st.DrawFn) -> object:
    """A valid wire dict with one field replaced or removed: the fast path's hardest inputs."""
    wire: Any = copy.deepcopy(orjson.loads(orjson.dumps(event_to_wire(draw(events())))))
    path = draw(st.sampled_from(_PATHS))
    if not path:
        return draw(json_values) if draw(st.booleans()) else wire
    node = wire
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        if draw(st.booleans()):
            node.pop(path[-1], None)
        else:
            node[path[-1]] = draw(json_values)
    return wire


@given(mutated_wire())
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
def test_fast_path_agrees_with_the_careful_validator(obj: object) -> None:
    # GIVEN any JSON value, mostly near-valid events WHEN both paths judge it
    fast = fast_parse(obj)
    try:
        careful: Event | None = checked_parse(obj)
    except EventValidationError:
        careful = None
    # THEN the fast path either declines or returns exactly what the careful validator returns,
    # and it never accepts what the careful validator rejects
    assert fast is None or fast == careful


def test_fast_path_takes_the_canonical_shapes() -> None:
    # GIVEN canonical wire dicts WHEN parsed THEN the fast path (not the fallback) accepted them
    base = _order_wire()
    view = {**base, "event_type": "product_view", "data": {"product_id": "p-1", "session_duration": 12}}
    activity = {**base, "event_type": "user_activity", "data": {"activity_type": "login", "session_id": "s"}}
    for wire in (base, view, activity):
        fast = fast_parse(wire)
        assert fast is not None
        assert fast == checked_parse(wire)


def test_offset_timestamps_normalise_to_the_same_instant() -> None:
    wire = _order_wire()
    plus_five = datetime(2026, 11, 24, 15, 15, tzinfo=timezone(timedelta(hours=5)))
    wire["timestamp"] = plus_five.isoformat()
    assert parse_event(wire).timestamp == datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
    assert parse_event(wire).event_type is EventType.ORDER_EVENT
