"""The oracle: small streams whose tables are worked out by hand, and the naive fold of effects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from pipeline.events import (
    Event,
    EventData,
    OrderData,
    OrderItem,
    ProductViewData,
    SystemMetricData,
    UserActivityData,
    new_event,
)
from pipeline.metrics.effects import Add, Effect, Extreme, Message, PutOnce
from tools.oracle import Tables, apply_effects, expected_messages, expected_tables, messages_of


def _at(hour: int, minute: int, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 11, 24, hour, minute, second, micro, tzinfo=UTC)


def _event(event_id: str, at: datetime, data: EventData, user_id: str | None = "u-1") -> Event:
    return new_event(event_id=event_id, timestamp=at, source="web", data=data, user_id=user_id)


def _order(order_id: str, status: str, total: str, *quantities: int) -> OrderData:
    items = tuple(OrderItem(f"p-{i}", q, Decimal(total) / sum(quantities)) for i, q in enumerate(quantities, 1))
    return OrderData(order_id, Decimal(total), items, status)


# --------------------------------------------------------------------------- orders


def _bucket(metric_type: str, bucket: str, **counters: int | Decimal) -> tuple[object, dict[str, object]]:
    key = (("metric_type", metric_type), ("time_bucket", bucket))
    return key, {"metric_type": metric_type, "time_bucket": bucket, **counters}


def test_orders_count_once_at_their_first_event_and_each_status_once() -> None:
    # GIVEN o-1 placed ("pending", the source design's first status) in hour 10 and completed in hour
    # 11 (written "Fulfilled"), o-2 created in hour 10 and shipped in hour 11, an event delivered
    # twice, a re-sent o-1 completion under a new event id, and o-3 first seen when it is cancelled
    stream = [
        _event("e-1", _at(10, 15), _order("o-1", "pending", "59.97", 2, 1)),
        _event("e-2", _at(10, 45), _order("o-2", "Created", "10.00", 1)),
        _event("e-1", _at(10, 46), _order("o-1", "pending", "59.97", 2, 1)),
        _event("e-3", _at(11, 5), _order("o-1", "Fulfilled", "59.97", 2, 1)),
        _event("e-4", _at(11, 30), _order("o-1", "completed", "59.97", 2, 1)),
        _event("e-5", _at(11, 40), _order("o-2", "shipped", "10.00", 1)),
        _event("e-6", _at(11, 50), _order("o-3", "canceled", "7.50", 3)),
    ]
    # WHEN the oracle computes the tables
    tables = expected_tables(stream)
    # THEN every order counts once, in the hour of its first event, whatever that event's status;
    # completions and cancellations count once each, under the synonyms; every status has its items
    assert tables["order_metrics"] == dict(
        [
            _bucket("hourly_orders", "2026-11-24#10", order_count=2, total_revenue=Decimal("69.97"), items_sold=4),
            _bucket(
                "hourly_orders",
                "2026-11-24#11",
                completed_orders=1,
                completed_revenue=Decimal("59.97"),
                order_count=1,
                total_revenue=Decimal("7.50"),
                items_sold=3,
                cancelled_orders=1,
            ),
            _bucket(
                "daily_orders",
                "2026-11-24",
                order_count=3,
                total_revenue=Decimal("77.47"),
                items_sold=7,
                completed_orders=1,
                completed_revenue=Decimal("59.97"),
                cancelled_orders=1,
            ),
            _bucket("hourly_order_status", "2026-11-24#10#pending", orders=1),
            _bucket("hourly_order_status", "2026-11-24#10#created", orders=1),
            _bucket("hourly_order_status", "2026-11-24#11#completed", orders=1),
            _bucket("hourly_order_status", "2026-11-24#11#shipped", orders=1),
            _bucket("hourly_order_status", "2026-11-24#11#cancelled", orders=1),
            _bucket("daily_order_status", "2026-11-24#pending", orders=1),
            _bucket("daily_order_status", "2026-11-24#created", orders=1),
            _bucket("daily_order_status", "2026-11-24#completed", orders=1),
            _bucket("daily_order_status", "2026-11-24#shipped", orders=1),
            _bucket("daily_order_status", "2026-11-24#cancelled", orders=1),
        ]
    )
    # AND the claims name the counting event: one per order, one per (order, status)
    claims = {
        (dict(key)["order_id"], dict(key)["claim"]): item["event_id"] for key, item in tables["order_claims"].items()
    }
    assert claims == {
        ("o-1", "order"): "e-1",
        ("o-1", "status=pending"): "e-1",
        ("o-2", "order"): "e-2",
        ("o-2", "status=created"): "e-2",
        ("o-1", "status=completed"): "e-3",
        ("o-2", "status=shipped"): "e-5",
        ("o-3", "order"): "e-6",
        ("o-3", "status=cancelled"): "e-6",
    }
    # AND the completed order is the one fulfilment message, from its first completion
    assert expected_messages(stream) == [
        {
            "order_id": "o-1",
            "user_id": "u-1",
            "total_amount": "59.97",
            "items": [
                {"product_id": "p-1", "quantity": 2, "price": "19.99"},
                {"product_id": "p-2", "quantity": 1, "price": "19.99"},
            ],
            "event_id": "e-3",
            "completed_at": "2026-11-24T11:05:00.000000Z",
        }
    ]


# --------------------------------------------------------------------------- product views, system metrics


def test_product_views_by_day_with_hourly_histogram() -> None:
    # GIVEN views of p-1 at 10:15 and 10:40 UTC and at 23:30 -05:00 (04:30 UTC next day), and of p-2
    stream = [
        _event("e-1", _at(10, 15), ProductViewData("p-1")),
        _event("e-2", _at(10, 40), ProductViewData("p-1")),
        _event("e-3", datetime(2026, 11, 24, 23, 30, tzinfo=timezone(timedelta(hours=-5))), ProductViewData("p-1")),
        _event("e-4", _at(9, 0), ProductViewData("p-2")),
    ]
    # WHEN the oracle computes THEN one item per product and UTC day
    assert expected_tables(stream)["product_metrics"] == {
        (("product_id", "p-1"), ("metric_date", "2026-11-24")): {
            "product_id": "p-1",
            "metric_date": "2026-11-24",
            "view_count": 2,
            "hour_10": 2,
            "last_viewed": "2026-11-24T10:40:00.000000Z",
        },
        (("product_id", "p-1"), ("metric_date", "2026-11-25")): {
            "product_id": "p-1",
            "metric_date": "2026-11-25",
            "view_count": 1,
            "hour_04": 1,
            "last_viewed": "2026-11-25T04:30:00.000000Z",
        },
        (("product_id", "p-2"), ("metric_date", "2026-11-24")): {
            "product_id": "p-2",
            "metric_date": "2026-11-24",
            "view_count": 1,
            "hour_09": 1,
            "last_viewed": "2026-11-24T09:00:00.000000Z",
        },
    }


def test_system_metrics_per_series_and_minute() -> None:
    # GIVEN latencies of one series (dimensions in any order) in one minute, and a series without any
    stream = [
        _event("e-1", _at(10, 15, 1), SystemMetricData("lat", Decimal("40.5"), "ms", {"svc": "a", "az": "1"}), None),
        _event("e-2", _at(10, 15, 59), SystemMetricData("lat", Decimal("-3"), "ms", {"az": "1", "svc": "a"}), None),
        _event("e-3", _at(10, 15, 30), SystemMetricData("depth", Decimal(7), "count", {}), None),
    ]
    # WHEN the oracle computes THEN count, exact sum, max and min per series key and minute
    assert expected_tables(stream)["system_metrics"] == {
        (("metric_key", "lat|az=1,svc=a"), ("minute", "2026-11-24T10:15")): {
            "metric_key": "lat|az=1,svc=a",
            "minute": "2026-11-24T10:15",
            "count": 2,
            "sum": Decimal("37.5"),
            "max": Decimal("40.5"),
            "min": Decimal("-3"),
        },
        (("metric_key", "depth|"), ("minute", "2026-11-24T10:15")): {
            "metric_key": "depth|",
            "minute": "2026-11-24T10:15",
            "count": 1,
            "sum": Decimal(7),
            "max": Decimal(7),
            "min": Decimal(7),
        },
    }


# --------------------------------------------------------------------------- user activity

_ACTIVITY = UserActivityData("search", "/search?q=x", None)


def test_activity_rows_and_sessions() -> None:
    # GIVEN u-1 active at 10:00, 10:20:30.5, 11:00 (a 39.5-minute gap) and late at 10:50; u-2 at 10:05
    stream = [
        _event("e-1", _at(10, 0), _ACTIVITY),
        _event("e-2", _at(10, 20, 30, 500_000), _ACTIVITY),
        _event("e-3", _at(10, 5), _ACTIVITY, "u-2"),
        _event("e-4", _at(11, 0), _ACTIVITY),
        _event("e-5", _at(10, 50), _ACTIVITY),
        _event("e-6", _at(10, 7), _ACTIVITY, None),
    ]
    # WHEN the oracle computes, u-2 being a known "vip"
    tables = expected_tables(stream, user_segments={"u-2": "vip"})
    # THEN durations: 0, 1230 (20:30.5 rounded down), 0 (new session), 0 (late); ttl 30 days on
    rows = {key[1][1]: item for key, item in tables["user_activities"].items()}
    assert {k: (v["session_duration"], v["user_segment"], v["ttl"]) for k, v in rows.items()} == {
        "2026-11-24T10:00:00.000000Z#e-1": (0, "new", 1798106400),
        "2026-11-24T10:20:30.500000Z#e-2": (1230, "new", 1798107630),
        "2026-11-24T10:05:00.000000Z#e-3": (0, "vip", 1798106700),
        "2026-11-24T11:00:00.000000Z#e-4": (0, "new", 1798110000),
        "2026-11-24T10:50:00.000000Z#e-5": (0, "new", 1798109400),
    }
    # AND a row holds exactly these attributes (no session_id: the event had none)
    assert rows["2026-11-24T10:00:00.000000Z#e-1"] == {
        "user_id": "u-1",
        "timestamp": "2026-11-24T10:00:00.000000Z#e-1",
        "activity_type": "search",
        "page_url": "/search?q=x",
        "session_duration": 0,
        "user_segment": "new",
        "event_id": "e-1",
        "ttl": 1798106400,
    }
    # AND each user's session is the latest activity with the start of its session; the late one moved nothing
    assert tables["user_sessions"] == {
        (("user_id", "u-1"),): {
            "user_id": "u-1",
            "last_activity": "2026-11-24T11:00:00.000000Z",
            "session_start": "2026-11-24T11:00:00.000000Z",
        },
        (("user_id", "u-2"),): {
            "user_id": "u-2",
            "last_activity": "2026-11-24T10:05:00.000000Z",
            "session_start": "2026-11-24T10:05:00.000000Z",
        },
    }


@pytest.mark.parametrize(
    ("timeout", "duration"),
    [
        pytest.param(timedelta(minutes=30), 1200, id="default-30-minutes"),
        pytest.param(timedelta(minutes=10), 0, id="10"),
    ],
)
def test_session_timeout_is_a_setting(timeout: timedelta, duration: int) -> None:
    # GIVEN activities 20 minutes apart WHEN the oracle computes with a timeout THEN continue or restart
    stream = [_event("e-1", _at(10, 0), _ACTIVITY), _event("e-2", _at(10, 20), _ACTIVITY)]
    rows = expected_tables(stream, session_timeout=timeout)["user_activities"]
    assert [item["session_duration"] for item in rows.values()] == [0, duration]


def test_no_events_no_tables() -> None:
    # GIVEN nothing WHEN the oracle computes THEN no table has an item (empty tables are absent)
    assert expected_tables([]) == {}
    assert expected_messages([]) == []


# --------------------------------------------------------------------------- the naive fold

_KEY = (("metric_key", "m|"), ("minute", "2026-11-24T10:15"))
_USER = (("user_id", "u-1"),)


def test_apply_effects_folds_naively() -> None:
    # GIVEN adds, extremes (with a tie and a loser), put-once twice and a message
    effects: list[Effect] = [
        Add("system_metrics", _KEY, {"count": 1, "sum": Decimal("1.5")}),
        Add("system_metrics", _KEY, {"count": 1, "sum": Decimal("2.25")}),
        Extreme("system_metrics", _KEY, "min", Decimal(3), "min"),
        Extreme("system_metrics", _KEY, "min", Decimal(2), "min"),
        Extreme("user_sessions", _USER, "last_activity", "b", "max", {"session_start": "first"}),
        Extreme("user_sessions", _USER, "last_activity", "b", "max", {"session_start": "tie-loses"}),
        Extreme("user_sessions", _USER, "last_activity", "a", "max", {"session_start": "older-loses"}),
        PutOnce("order_claims", (("order_id", "o"), ("status", "created")), {"event_id": "e-1"}),
        PutOnce("order_claims", (("order_id", "o"), ("status", "created")), {"event_id": "e-2"}),
        Message("fulfilment", {"order_id": "o"}, dedup_id="e-1", group_id="o"),
    ]
    # WHEN folded
    tables = apply_effects(effects)
    # THEN sums, the strictly better extreme with its companions, the first put, no message
    assert tables == {
        "system_metrics": {
            _KEY: {"metric_key": "m|", "minute": "2026-11-24T10:15", "count": 2, "sum": Decimal("3.75"), "min": 2}
        },
        "user_sessions": {_USER: {"user_id": "u-1", "last_activity": "b", "session_start": "first"}},
        "order_claims": {(("order_id", "o"), ("status", "created")): {"event_id": "e-1"}},
    }


def test_apply_effects_into_existing_tables() -> None:
    # GIVEN tables from an earlier batch WHEN more effects are folded into them THEN the same dict, updated
    earlier: Tables = apply_effects([Add("t", _USER, {"n": 1})])
    later = apply_effects([Add("t", _USER, {"n": 2})], earlier)
    assert later is earlier
    assert earlier == {"t": {_USER: {"user_id": "u-1", "n": 3}}}


def test_apply_effects_refuses_mixed_kinds() -> None:
    # GIVEN an attribute holding a string WHEN a number is added or compared THEN TypeError, not a guess
    with pytest.raises(TypeError):
        apply_effects([Extreme("t", _USER, "x", "a"), Add("t", _USER, {"x": 1})])
    with pytest.raises(TypeError):
        apply_effects([Extreme("t", _USER, "x", "a"), Extreme("t", _USER, "x", 1)])


def test_messages_are_deduplicated_by_id_per_queue() -> None:
    # GIVEN a message sent twice and one for another queue WHEN delivered THEN one body, in order
    effects: list[Effect] = [
        Message("fulfilment", {"n": 1}, dedup_id="e-1", group_id="o"),
        Message("other", {"n": 2}, dedup_id="e-2", group_id="o"),
        Message("fulfilment", {"n": 1}, dedup_id="e-1", group_id="o"),
        Message("fulfilment", {"n": 3}, dedup_id="e-3", group_id="o"),
    ]
    assert messages_of(effects) == [{"n": 1}, {"n": 3}]
