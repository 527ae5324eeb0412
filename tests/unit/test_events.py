"""The event model: one typed decoder names the field and says why, money stays Decimal, time is aware
UTC, every AWS limit is decided at validation, the wire form round-trips, and the hot path agrees
with the careful one."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codecs import DecodedEvent, decode_record, decode_records
from pipeline.events import (
    Event,
    EventType,
    OrderData,
    ValidationPolicy,
    decode_event,
    encode_event,
    event_to_wire,
    parse_event,
)
from pipeline.events.decoder import SMALL_EVENT_BYTES, check_event, decode_unchecked
from pipeline.events.limits import LATEST_EVENT_TIME
from pipeline.exceptions import DecodeError, EventValidationError
from pipeline.stream import StreamRecord
from tests.strategies import events

pytestmark = pytest.mark.library  # the embeddable library: ./dev test also runs it on 3.11 and 3.13

ARRIVAL = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NOT_AFTER = ValidationPolicy().not_after(ARRIVAL)


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
    assert decode_event(encode_event(event)) == event
    assert parse_event(orjson.loads(orjson.dumps(event_to_wire(event)))) == event


def test_money_is_decimal_read_exactly_and_time_is_aware_utc() -> None:
    # GIVEN an order written with a non-UTC offset and JSON-number money, one with 20 significant digits
    raw = orjson.dumps(_order_wire()).replace(b'"59.97"', b"12345678901234567.89").replace(b'"19.99"', b"19.99")
    raw = raw.replace(b"10:15:00.250000+00:00", b"12:15:00.25+02:00")
    # WHEN it is decoded
    event = decode_event(raw)
    # THEN the money is the exact Decimal the producer wrote (no float on the way) and the time is UTC
    assert isinstance(event.data, OrderData)
    assert event.data.total_amount == Decimal("12345678901234567.89")
    assert event.data.items[0].price == Decimal("19.99")
    assert event.timestamp == datetime(2026, 11, 24, 10, 15, 0, 250000, tzinfo=UTC)
    assert event.timestamp.tzinfo is UTC
    assert event.event_type is EventType.ORDER_EVENT


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
        pytest.param(_set("event_id", _DELETE), "event_id", "is missing", id="missing-event-id"),
        pytest.param(_set("event_id", ""), "event_id", "is empty", id="empty-event-id"),
        pytest.param(_set("event_id", "x" * 257), "event_id", "longer than 256 characters", id="long-event-id"),
        pytest.param(_set("event_id", "\U0001f600" * 250), "event_id", "996 bytes", id="event-id-over-key-bytes"),
        pytest.param(_set("event_type", _DELETE), "event_type", "is missing; expected one of", id="no-type"),
        pytest.param(_set("event_type", "refund"), "event_type", "unknown event type 'refund'", id="unknown-type"),
        pytest.param(_set("schema_version", 2), "schema_version", "unsupported", id="future-version"),
        pytest.param(_set("schema_version", True), "schema_version", "must be", id="bool-version"),
        pytest.param(_set("timestamp", "2026-11-24T10:15:00"), "timestamp", "offset", id="naive-time"),
        pytest.param(_set("timestamp", "yesterday"), "timestamp", "RFC 3339", id="not-a-time"),
        pytest.param(
            _set("timestamp", "9999-12-31T23:59:59-05:00"), "timestamp", "years 1-9999", id="utc-overflow-high"
        ),
        pytest.param(
            _set("timestamp", "0001-01-01T00:00:00+05:00"), "timestamp", "years 1-9999", id="utc-overflow-low"
        ),
        pytest.param(_set("timestamp", "2026-11-26T12:00:01Z"), "timestamp", "future horizon", id="past-horizon"),
        pytest.param(_set("data.total_amount", "12,50"), "data.total_amount", "not a decimal", id="bad-money-text"),
        pytest.param(_set("data.total_amount", "-1"), "data.total_amount", "negative", id="negative-money"),
        pytest.param(_set("data.total_amount", "NaN"), "data.total_amount", "finite", id="nan-money"),
        pytest.param(_set("data.total_amount", "1E+200"), "data.total_amount", "10^18", id="money-too-large"),
        pytest.param(_set("data.total_amount", "1" * 40), "data.total_amount", "10^18", id="money-40-digits"),
        pytest.param(_set("data.total_amount", "1e-400"), "data.total_amount", "decimal places", id="money-tiny"),
        pytest.param(_set("data.total_amount", True), "data.total_amount", "decimal number", id="bool-money"),
        pytest.param(_set("data.items", []), "data.items", "is empty", id="no-items"),
        pytest.param(_set("data.items.0.quantity", 0), "data.items[0].quantity", "positive", id="zero-quantity"),
        pytest.param(_set("data.items.0.quantity", 1.5), "data.items[0].quantity", "integer", id="float-quantity"),
        pytest.param(_set("data.items.0.quantity", 10**15), "data.items[0].quantity", "at most", id="huge-quantity"),
        pytest.param(_set("data.items.0.price", None), "data.items[0].price", "decimal", id="null-price"),
        pytest.param(_set("data.status", "  "), "data.status", "blank", id="blank-status"),
        pytest.param(_set("data.status", "s" * 65), "data.status", "longer than 64", id="long-status"),
        pytest.param(_set("user_id", 7), "user_id", "string", id="numeric-user"),
        pytest.param(_set("user_id", ""), "user_id", "is empty", id="empty-user"),
        pytest.param(_set("data", []), "data", "object", id="data-list"),
    ],
)
def test_invalid_event_names_field_and_reason(wire: dict[str, Any], field: str, reason_part: str) -> None:
    # GIVEN an event with one bad field WHEN decoded THEN the typed error names that field and why
    with pytest.raises(EventValidationError) as caught:
        decode_event(orjson.dumps(wire), NOT_AFTER)
    assert caught.value.field == field
    assert reason_part in caught.value.reason
    assert "got `" not in caught.value.reason  # words, not Python types


def _activity_wire(**data: object) -> dict[str, Any]:
    return {
        "event_id": "a-1",
        "event_type": "user_activity",
        "schema_version": 1,
        "timestamp": "2026-11-24T10:15:00Z",
        "source": "web",
        "user_id": "u-1",
        "data": {"activity_type": "page_view", **data},
    }


@pytest.mark.parametrize(
    ("wire", "field", "reason_part"),
    [
        pytest.param({**_activity_wire(), "user_id": None}, "user_id", "must be a string", id="activity-null-user"),
        pytest.param(
            {k: v for k, v in _activity_wire().items() if k != "user_id"}, "user_id", "is missing", id="no-user"
        ),
        pytest.param(_activity_wire(page_url="x" * 500_000), "data.page_url", "longer than 8192", id="huge-page-url"),
    ],
)
def test_activity_limits(wire: dict[str, Any], field: str, reason_part: str) -> None:
    with pytest.raises(EventValidationError) as caught:
        decode_event(orjson.dumps(wire), NOT_AFTER)
    assert (caught.value.field, reason_part in caught.value.reason) == (field, True)


def test_metric_series_over_a_dynamodb_key_is_invalid() -> None:
    # GIVEN a metric whose name and dimensions make a series key past DynamoDB's 2,048-byte key
    wire = {
        "event_id": "m-1",
        "event_type": "system_metric",
        "schema_version": 1,
        "timestamp": "2026-11-24T10:15:00Z",
        "source": "api",
        "data": {"name": "n" * 200, "value": "1", "unit": "ms", "dimensions": {f"k{i}": "|" * 250 for i in range(3)}},
    }
    # WHEN decoded THEN it is invalid, and the reason says so
    with pytest.raises(EventValidationError, match="series") as caught:
        decode_event(orjson.dumps(wire), NOT_AFTER)
    assert caught.value.field == "data.dimensions"


def test_an_event_past_one_mib_is_invalid_whatever_it_carries() -> None:
    wire = {**_activity_wire(), "extra": "x" * (1024 * 1024)}
    with pytest.raises(EventValidationError, match="1,048,576"):
        decode_event(orjson.dumps(wire), NOT_AFTER)


def test_unknown_fields_are_ignored_and_kept_in_the_raw_bytes() -> None:
    # GIVEN a newer producer's event with fields this version does not know
    raw = orjson.dumps({**_activity_wire(referrer_campaign="x"), "trace": {"id": [1, 2]}})
    # WHEN decoded THEN it is valid, and the decoded event carries the exact raw bytes for the archive
    (result,) = decode_record(raw, "s", "1", NOT_AFTER)
    assert isinstance(result, DecodedEvent)
    assert result.raw == raw


def test_the_horizon_is_measured_from_arrival_and_configurable() -> None:
    wire = orjson.dumps({**_activity_wire(), "timestamp": "2026-11-24T20:00:00Z"})
    assert decode_event(wire, ValidationPolicy().not_after(ARRIVAL)).event_id == "a-1"
    with pytest.raises(EventValidationError, match="future horizon"):
        decode_event(wire, ValidationPolicy(horizon=timedelta(hours=1)).not_after(ARRIVAL))
    assert ValidationPolicy(horizon=timedelta(days=3_000_000)).not_after(ARRIVAL) == LATEST_EVENT_TIME


def test_non_object_is_rejected_at_the_root() -> None:
    with pytest.raises(EventValidationError) as caught:
        parse_event([1, 2])
    assert caught.value.field == "$"
    assert "JSON object" in caught.value.reason


def test_offset_timestamps_normalise_to_the_same_instant() -> None:
    wire = _order_wire()
    plus_five = datetime(2026, 11, 24, 15, 15, tzinfo=timezone(timedelta(hours=5)))
    wire["timestamp"] = plus_five.isoformat()
    assert parse_event(wire).timestamp == datetime(2026, 11, 24, 10, 15, tzinfo=UTC)


# --------------------------------------------------------------------------- the hot path agrees

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**40), 10**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["1E+200", "1e-400", "-0", "0.1234567890123", "NaN", "2026-11-24T10:15:00+05:00", " "]),
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
    ("data", "status"),
    ("data", "session_duration"),
    ("data", "activity_type"),
    ("data", "value"),
    ("data", "dimensions"),
]


@st.composite
def mutated_wire(draw: st.DrawFn) -> bytes:
    """A valid event's wire bytes with one field replaced or removed: the hardest inputs for a fast path."""
    wire: Any = copy.deepcopy(orjson.loads(encode_event(draw(events()))))
    path = draw(st.sampled_from(_PATHS))
    if not path:
        return msgspec.json.encode(draw(json_values) if draw(st.booleans()) else wire)
    node = wire
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        if draw(st.booleans()):
            node.pop(path[-1], None)
        else:
            node[path[-1]] = draw(json_values)
    return msgspec.json.encode(wire)


@given(mutated_wire())
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
def test_the_hot_path_agrees_with_the_careful_one(raw: bytes) -> None:
    # GIVEN any JSON, mostly near-valid events WHEN both paths judge it
    try:
        careful: Event | None = check_event(decode_unchecked(raw), raw, NOT_AFTER)
    except Exception:  # noqa: BLE001 - any refusal: the careful path's verdict is "not an event"
        careful = None
    (fast,) = decode_records([StreamRecord("shard-0", "1", raw, ARRIVAL)])
    (single,) = decode_record(raw, "shard-0", "1", NOT_AFTER)
    # THEN the batch and single decoders give the careful verdict, and an error keeps the bytes
    for result in (fast, single):
        if careful is None:
            assert isinstance(result, DecodeError)
            assert result.raw == raw
        else:
            assert isinstance(result, DecodedEvent)
            assert result.event == careful


def test_small_events_cannot_break_a_size_limit() -> None:
    # The hot path skips the size checks below SMALL_EVENT_BYTES: no limit can be reached there
    assert SMALL_EVENT_BYTES * 3 <= 2048
    assert SMALL_EVENT_BYTES <= 996


@pytest.mark.parametrize(
    ("timestamp", "arrival", "valid"),
    [
        pytest.param("2026-11-24T11:59:59Z", ARRIVAL, True, id="before-arrival"),
        pytest.param("2026-11-24T12:00:00Z", ARRIVAL, True, id="at-arrival"),
        pytest.param("2026-11-25T11:59:59Z", ARRIVAL, True, id="after-arrival-within-horizon"),
        pytest.param("2026-11-25T12:00:01Z", ARRIVAL, False, id="past-horizon"),
        pytest.param("9995-01-01T00:00:00Z", datetime(9999, 1, 1, tzinfo=UTC), False, id="arrival-past-latest"),
        pytest.param("9989-12-31T23:59:59Z", datetime(9999, 1, 1, tzinfo=UTC), True, id="latest-event-time"),
    ],
)
def test_each_record_is_judged_against_its_own_arrival_in_a_batch(
    timestamp: str, arrival: datetime, valid: bool
) -> None:
    # GIVEN a batch where the record under test arrived at `arrival`, between records that arrived a day
    # earlier and later (the batch decoder's fast path compares each event with its own record's arrival)
    raw = orjson.dumps({**_order_wire(), "timestamp": timestamp})
    others = [encode_event(decode_event(orjson.dumps(_order_wire()))) for _ in range(2)]
    records = [
        StreamRecord("shard-0", "1", others[0], ARRIVAL - timedelta(days=1)),
        StreamRecord("shard-0", "2", raw, arrival),
        StreamRecord("shard-0", "3", others[1], ARRIVAL + timedelta(days=1)),
    ]
    # WHEN the batch is decoded THEN the record's verdict is the single-record decoder's with its own horizon
    results = decode_records(records)
    (alone,) = decode_record(raw, "shard-0", "2", ValidationPolicy().not_after(arrival))
    assert isinstance(results[0], DecodedEvent)
    assert isinstance(results[2], DecodedEvent)
    assert isinstance(results[1], DecodedEvent) is valid
    assert type(results[1]) is type(alone)
    if isinstance(results[1], DecodedEvent) and isinstance(alone, DecodedEvent):
        assert results[1].event == alone.event
        assert results[1].event.timestamp.tzinfo is UTC
    else:
        assert isinstance(results[1], DecodeError)
        assert isinstance(alone, DecodeError)
        assert results[1].reason == alone.reason
        assert "future horizon" in results[1].reason


@pytest.mark.parametrize("prefix", [b"", b" ", b"\n", b"\r\n\t "])
def test_a_pretty_printed_event_after_whitespace_is_one_event_for_both_decoders(prefix: bytes) -> None:
    # GIVEN one event pretty-printed over several lines, with whitespace before it
    raw = prefix + orjson.dumps(_order_wire(), option=orjson.OPT_INDENT_2)
    # WHEN decoded alone and in a batch THEN both give the event, keeping the bytes as received
    (alone,) = decode_record(raw, "shard-0", "1", NOT_AFTER)
    (batched,) = decode_records([StreamRecord("shard-0", "1", raw, ARRIVAL)])
    assert isinstance(alone, DecodedEvent)
    assert isinstance(batched, DecodedEvent)
    assert alone.event == batched.event
    assert alone.raw == batched.raw == raw
