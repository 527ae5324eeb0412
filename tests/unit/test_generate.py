"""The reference workload generator: determinism, the advertised mix and shapes, and bounded memory."""

from __future__ import annotations

import gc
import io
import re
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from pipeline.events import (
    Event,
    EventType,
    OrderData,
    OrderItem,
    ProductViewData,
    SystemMetricData,
    UserActivityData,
    event_to_wire,
    parse_event,
)
from pipeline.exceptions import ConfigurationError
from tools.generate import WorkloadSpec, generate_events, write_ndjson

N = 20_000
SEED = 20261124
SPEC = WorkloadSpec()


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return list(generate_events(N, SEED))


def _wire(events: list[Event]) -> bytes:
    out = io.BytesIO()
    write_ndjson(events, out)
    return out.getvalue()


def _orders(events: list[Event]) -> list[tuple[Event, OrderData]]:
    return [(e, e.data) for e in events if isinstance(e.data, OrderData)]


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_bytes() -> None:
    # GIVEN two independent runs with the same n, seed and spec
    # WHEN both are written as NDJSON
    first = _wire(list(generate_events(3_000, 7)))
    second = _wire(list(generate_events(3_000, 7)))
    # THEN the bytes are identical
    assert first == second


def test_different_seed_gives_different_events() -> None:
    # GIVEN runs with different seeds
    # WHEN both are written
    # THEN the streams differ, event ids included
    a, b = list(generate_events(1_000, 1)), list(generate_events(1_000, 2))
    assert _wire(a) != _wire(b)
    assert not {e.event_id for e in a} & {e.event_id for e in b}


@pytest.mark.parametrize("n", [pytest.param(0, id="empty"), pytest.param(1, id="one"), pytest.param(777, id="777")])
def test_yields_exactly_n_events_with_unique_ids(n: int) -> None:
    # GIVEN a requested count WHEN generating THEN exactly that many events, each with its own id
    got = list(generate_events(n, 3))
    assert len(got) == n
    assert len({e.event_id for e in got}) == n


def test_negative_n_is_refused_at_the_call() -> None:
    # GIVEN a negative count WHEN calling (without iterating) THEN ValueError is raised at once
    with pytest.raises(ValueError, match="non-negative"):
        generate_events(-1, 0)


# --------------------------------------------------------------------------- the reference mix


@pytest.mark.parametrize(
    ("event_type", "share"),
    [
        pytest.param(EventType.PRODUCT_VIEW, SPEC.product_view_share, id="product_view"),
        pytest.param(EventType.USER_ACTIVITY, SPEC.user_activity_share, id="user_activity"),
        pytest.param(EventType.ORDER_EVENT, SPEC.order_event_share, id="order_event"),
        pytest.param(EventType.SYSTEM_METRIC, SPEC.system_metric_share, id="system_metric"),
    ],
)
def test_mix_is_within_two_points_of_the_spec(events: list[Event], event_type: EventType, share: float) -> None:
    # GIVEN 20,000 reference events WHEN counting one type THEN its share is within 2 points of the spec
    observed = sum(e.event_type is event_type for e in events) / len(events)
    assert observed == pytest.approx(share, abs=0.02)


def test_every_event_round_trips_through_the_wire_form(events: list[Event]) -> None:
    # GIVEN every generated event WHEN encoded canonically and parsed back THEN it is equal
    for event in events:
        assert parse_event(orjson.loads(orjson.dumps(event_to_wire(event)))) == event


# --------------------------------------------------------------------------- orders


def test_order_totals_are_exact_decimal_sums_of_two_place_prices(events: list[Event]) -> None:
    # GIVEN every order event
    orders = _orders(events)
    assert orders
    for _, order in orders:
        # THEN items are 1-5 distinct products, quantities 1-3, prices with exactly two places
        assert 1 <= len(order.items) <= 5
        assert len({i.product_id for i in order.items}) == len(order.items)
        for item in order.items:
            assert 1 <= item.quantity <= 3
            assert isinstance(item.price, Decimal)
            assert item.price.as_tuple().exponent == -2
            assert Decimal("1.00") <= item.price <= Decimal("499.99")
        # AND the total is the exact sum, with no float anywhere
        assert order.total_amount == sum((i.price * i.quantity for i in order.items), Decimal(0))
        assert order.total_amount.as_tuple().exponent == -2


def test_order_lifecycle_is_consistent(events: list[Event]) -> None:
    # GIVEN the order events in stream order
    created: dict[str, tuple[tuple[OrderItem, ...], Decimal, str | None]] = {}
    resolved: set[str] = set()
    subtypes: Counter[str | None] = Counter()
    for event, order in _orders(events):
        subtypes[event.event_subtype] += 1
        # THEN the subtype names the status
        assert event.event_subtype == f"order_{order.status}"
        if order.status == "created":
            # AND an order is created once
            assert order.order_id not in created
            created[order.order_id] = (order.items, order.total_amount, event.user_id)
            continue
        # AND completed / cancelled come once, after the created event of the same order,
        # for the same user, with the same items and total
        assert order.status in {"completed", "cancelled"}
        assert order.order_id in created
        assert order.order_id not in resolved
        resolved.add(order.order_id)
        assert created[order.order_id] == (order.items, order.total_amount, event.user_id)
    # AND all three kinds occur, completions outnumbering cancellations, some orders left open
    assert subtypes["order_completed"] > subtypes["order_cancelled"] > 0
    assert 0 < len(resolved) < len(created)


def test_prices_are_stable_per_product_across_seeds() -> None:
    # GIVEN two runs with different seeds
    prices: dict[str, Decimal] = {}
    for seed in (11, 12):
        for _, order in _orders(list(generate_events(4_000, seed))):
            for item in order.items:
                # THEN a product always has the same price
                assert prices.setdefault(item.product_id, item.price) == item.price


# --------------------------------------------------------------------------- products and sessions


def test_product_popularity_follows_zipf(events: list[Event]) -> None:
    # GIVEN the product views of 20,000 events
    views = Counter(e.data.product_id for e in events if isinstance(e.data, ProductViewData))
    top, top_count = views.most_common(1)[0]
    harmonic = sum(1 / k for k in range(1, SPEC.num_products + 1))
    # THEN the most popular product is p-00001, with about 1/H(10000) = 10.2% of the views
    assert top == "p-00001"
    assert top_count / views.total() == pytest.approx(1 / harmonic, abs=0.015)
    # AND the second takes about half as many
    assert views["p-00002"] / top_count == pytest.approx(0.5, abs=0.1)


def test_sessions_average_about_eight_events(events: list[Event]) -> None:
    # GIVEN user events sessionised per user with a 30-minute inactivity gap (as a session window does)
    gap = timedelta(minutes=30)
    last_seen: dict[str | None, datetime] = {}
    sessions = 0
    user_events = [e for e in events if e.user_id is not None]
    for event in user_events:
        previous = last_seen.get(event.user_id)
        if previous is None or event.timestamp - previous > gap:
            sessions += 1
        last_seen[event.user_id] = event.timestamp
    # THEN a session has about 8 events
    assert 7.0 <= len(user_events) / sessions <= 9.0
    # AND every session id belongs to exactly one user
    owners: dict[str | None, set[str | None]] = {}
    for event in user_events:
        if isinstance(event.data, UserActivityData):
            owners.setdefault(event.data.session_id, set()).add(event.user_id)
    assert len(owners) > 1_000
    assert all(len(users) == 1 for users in owners.values())


def test_user_events_look_like_a_shop(events: list[Event]) -> None:
    # GIVEN the user-facing events
    for event in events:
        if event.event_type is EventType.SYSTEM_METRIC:
            continue
        # THEN they carry a user id, a client source and schema version 1
        assert event.user_id is not None
        assert re.fullmatch(r"u-\d{6}", event.user_id)
        assert event.source in {"web", "ios", "android"}
        assert event.schema_version == 1
        data = event.data
        if isinstance(data, ProductViewData):
            # AND a view has a Zipf product, a referrer, a device and whole seconds into the session
            assert re.fullmatch(r"p-\d{5}", data.product_id)
            assert data.referrer
            assert data.device_type in {"mobile", "desktop", "tablet"}
            assert isinstance(data.session_duration, int)
            assert 0 <= data.session_duration < 6 * 3600
        elif isinstance(data, UserActivityData):
            # AND an activity has a shop URL and a session id
            assert data.page_url is not None
            assert data.page_url.startswith("https://shop.example.com/")
            assert data.session_id is not None
            assert data.session_id.startswith("s-")
    kinds = Counter(e.data.activity_type for e in events if isinstance(e.data, UserActivityData))
    assert {"page_view", "search", "add_to_cart", "login", "logout"} <= set(kinds)


def test_system_metrics_have_units_dimensions_and_no_user(events: list[Event]) -> None:
    # GIVEN the system metric events
    metrics = [(e, e.data) for e in events if isinstance(e.data, SystemMetricData)]
    units = {"api.latency_ms": "ms", "api.error_rate": "percent", "cpu.utilization": "percent"}
    units |= {"memory.utilization": "percent", "queue.depth": "count"}
    for event, data in metrics:
        # THEN each has a known name and unit, service and region dimensions, a Decimal value, no user
        assert units[data.name] == data.unit
        assert set(data.dimensions) == {"service", "region"}
        assert event.source == data.dimensions["service"]
        assert isinstance(data.value, Decimal)
        assert data.value >= 0
        assert event.user_id is None
    assert {d.name for _, d in metrics} == set(units)


# --------------------------------------------------------------------------- time


def test_timestamps_are_ordered_utc_and_spread_over_the_span(events: list[Event]) -> None:
    # GIVEN the stream's timestamps
    times = [e.timestamp for e in events]
    # THEN they are aware UTC, non-decreasing and inside [start, start + duration)
    assert all(t.tzinfo is UTC for t in times)
    assert times == sorted(times)
    assert SPEC.start <= times[0] and times[-1] < SPEC.start + SPEC.duration
    # AND they cover the six hours, with sub-second precision
    assert times[-1] - times[0] > timedelta(hours=5, minutes=50)
    assert any(t.microsecond for t in times)


def test_custom_start_duration_and_mix() -> None:
    # GIVEN a one-hour, views-only workload starting at another instant
    start = datetime(2025, 3, 1, tzinfo=UTC)
    spec = WorkloadSpec(
        start=start,
        duration=timedelta(hours=1),
        product_view_share=1.0,
        user_activity_share=0.0,
        order_event_share=0.0,
        system_metric_share=0.0,
    )
    # WHEN generating
    got = list(generate_events(2_000, 5, spec))
    # THEN only product views occur, inside that hour
    assert {e.event_type for e in got} == {EventType.PRODUCT_VIEW}
    assert all(start <= e.timestamp < start + timedelta(hours=1) for e in got)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"num_products": 0}, id="no-products"),
        pytest.param({"mean_session_events": 0.5}, id="short-sessions"),
        pytest.param({"system_metric_share": 0.5}, id="shares-not-summing-to-one"),
        pytest.param({"completion_rate": 1.5}, id="rate-over-one"),
        pytest.param({"start": datetime(2026, 1, 1)}, id="naive-start"),  # noqa: DTZ001
        pytest.param({"duration": timedelta(0)}, id="empty-span"),
        pytest.param({"mean_event_gap": timedelta(0)}, id="zero-gap"),
    ],
)
def test_invalid_spec_is_refused(overrides: dict[str, Any]) -> None:
    # GIVEN an invalid field WHEN building the spec THEN ConfigurationError names it
    with pytest.raises(ConfigurationError, match="WorkloadSpec"):
        WorkloadSpec(**overrides)


# --------------------------------------------------------------------------- output and memory


def test_write_ndjson_writes_canonical_lines() -> None:
    # GIVEN some events
    got = list(generate_events(500, 9))
    out = io.BytesIO()
    # WHEN written as NDJSON
    count = write_ndjson(iter(got), out)
    # THEN one canonical line per event, and the count is returned
    assert count == 500
    lines = out.getvalue().split(b"\n")
    assert lines[-1] == b""
    assert lines[:-1] == [orjson.dumps(event_to_wire(e)) for e in got]


def test_generation_is_lazy_and_memory_bounded() -> None:
    # GIVEN the interpreter's live allocation count (cheap to read, unlike tracemalloc, which would
    # slow this run several-fold); holding N events costs several blocks per event
    gc.collect()
    baseline = sys.getallocatedblocks()
    peak = 0
    # WHEN 200,000 events are generated and dropped one by one
    for i, _event in enumerate(generate_events(200_000, 1)):
        if i % 2_000 == 0:
            peak = max(peak, sys.getallocatedblocks() - baseline)
    # THEN the growth is the session pool and open orders, far below one block per event
    assert peak < 200_000
