"""The order plugin: claims per order and status, status synonyms, exact money, buckets by event time in
UTC, and one fulfilment message per completed order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from pipeline.metrics.effects import Add, Message, PutOnce
from pipeline.plugins import BatchContext, OrderMetricsPlugin
from pipeline.plugins.orders import claim_key, normalise_status
from tests.plugin_cases import T0, effects_of, make_context, make_event, order_data
from tools.oracle import apply_effects

_HOURLY = (("metric_type", "hourly_orders"), ("time_bucket", "2026-11-24#10"))
_DAILY = (("metric_type", "daily_orders"), ("time_bucket", "2026-11-24"))


_STATUS_HOURLY = (("metric_type", "hourly_order_status"), ("time_bucket", "2026-11-24#10#created"))
_STATUS_DAILY = (("metric_type", "daily_order_status"), ("time_bucket", "2026-11-24#created"))


def test_first_order_event_claims_the_order_and_its_status() -> None:
    # GIVEN an order's first event WHEN the plugin runs
    (effects,) = OrderMetricsPlugin().effects([make_event(order_data())], BatchContext())
    # THEN it claims the order and adds the order's exact counters to its hour and its day
    stamped = "2026-11-24T10:15:00.250000Z"
    assert effects[0] == PutOnce(
        "order_claims",
        claim_key("o-1", "order"),
        {"order_id": "o-1", "claim": "order", "event_id": "e-1", "claimed_at": stamped},
    )
    amounts: dict[str, int | Decimal] = {"order_count": 1, "total_revenue": Decimal("59.97"), "items_sold": 3}
    assert effects[1:3] == [Add("order_metrics", _HOURLY, amounts), Add("order_metrics", _DAILY, amounts)]
    assert isinstance(effects[1], Add)
    assert type(effects[1].amounts["total_revenue"]) is Decimal
    # AND it claims its status and counts it in the status items
    assert effects[3] == PutOnce(
        "order_claims",
        claim_key("o-1", "status=created"),
        {"order_id": "o-1", "claim": "status=created", "event_id": "e-1", "claimed_at": stamped},
    )
    assert effects[4:] == [
        Add("order_metrics", _STATUS_HOURLY, {"orders": 1}),
        Add("order_metrics", _STATUS_DAILY, {"orders": 1}),
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param("CREATED", "created", id="lowercased"),
        pytest.param(" Pending ", "pending", id="trimmed"),
        pytest.param("complete", "completed", id="complete"),
        pytest.param("FULFILLED", "completed", id="fulfilled"),
        pytest.param("Canceled", "cancelled", id="canceled-us"),
        pytest.param("cancelled", "cancelled", id="cancelled-uk"),
        pytest.param("shipped", "shipped", id="any-other-status-is-itself"),
    ],
)
def test_status_synonyms(status: str, expected: str) -> None:
    # GIVEN a status as a producer writes it WHEN normalised THEN the name it is counted under
    assert normalise_status(status) == expected


@pytest.mark.parametrize(
    ("status", "amounts"),
    [
        pytest.param("completed", {"completed_orders": 1, "completed_revenue": Decimal("59.97")}, id="completed"),
        pytest.param("Fulfilled", {"completed_orders": 1, "completed_revenue": Decimal("59.97")}, id="fulfilled"),
        pytest.param("Canceled", {"cancelled_orders": 1}, id="cancelled"),
    ],
)
def test_resolved_orders_add_their_own_counters(status: str, amounts: dict[str, int | Decimal]) -> None:
    # GIVEN a completion or cancellation of an order already counted (another event holds its claim)
    context = make_context(claims={("o-1", "order"): "e-0"})
    # WHEN the plugin runs THEN only that status's counters, besides its status items
    (effects,) = OrderMetricsPlugin().effects([make_event(order_data(status=status))], context)
    main = [a for a in effects_of(Add, effects) if isinstance(a, Add) and a.key in (_HOURLY, _DAILY)]
    assert main == [Add("order_metrics", _HOURLY, amounts), Add("order_metrics", _DAILY, amounts)]


@pytest.mark.parametrize("status", ["pending", "placed", "shipped", "refunded"])
def test_every_other_status_is_counted_under_its_name(status: str) -> None:
    # GIVEN an order already counted, in a status with no counter of its own
    context = make_context(claims={("o-1", "order"): "e-0"})
    # WHEN the plugin runs THEN it is counted in that status's items: no valid event disappears
    (effects,) = OrderMetricsPlugin().effects([make_event(order_data(status=status))], context)
    assert [dict(a.key)["time_bucket"] for a in effects_of(Add, effects) if isinstance(a, Add)] == [
        f"2026-11-24#10#{status}",
        f"2026-11-24#{status}",
    ]


def test_completed_order_sends_one_fulfilment_message_deduplicated_by_event_id() -> None:
    # GIVEN a completed order WHEN the plugin runs
    (effects,) = OrderMetricsPlugin().effects(
        [make_event(order_data(status="completed"), event_id="e-9")], BatchContext()
    )
    # THEN one FIFO message, grouped by order, deduplicated by event id, money as exact text
    assert effects_of(Message, effects) == [
        Message(
            "fulfilment",
            {
                "order_id": "o-1",
                "user_id": "u-1",
                "total_amount": "59.97",
                "items": [
                    {"product_id": "p-1", "quantity": 2, "price": "19.99"},
                    {"product_id": "p-2", "quantity": 1, "price": "19.99"},
                ],
                "event_id": "e-9",
                "completed_at": "2026-11-24T10:15:00.250000Z",
            },
            dedup_id="e-9",
            group_id="o-1",
        )
    ]


def test_buckets_follow_event_time_in_utc_not_arrival_order() -> None:
    # GIVEN orders arriving out of time order, one written with a +05:30 offset
    late = make_event(order_data("o-1"), datetime(2026, 11, 24, 9, 59, tzinfo=UTC), "e-1")
    offset = make_event(
        order_data("o-2"), datetime(2026, 11, 25, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))), "e-2"
    )
    # WHEN the plugin runs
    got = OrderMetricsPlugin().effects([late, offset], BatchContext())
    # THEN each counts in the UTC hour and day of its own event time
    buckets = [
        [
            dict(a.key)["time_bucket"]
            for a in effects_of(Add, effects)
            if isinstance(a, Add) and str(a.key[0][1]).endswith("orders")
        ]
        for effects in got
    ]
    assert buckets == [["2026-11-24#09", "2026-11-24"], ["2026-11-24#20", "2026-11-24"]]


def test_money_sums_exactly() -> None:
    # GIVEN ten orders of 0.10 in one hour WHEN their effects are folded THEN revenue is exactly 1.00
    stream = [make_event(order_data(f"o-{i}", total="0.10"), T0, f"e-{i}") for i in range(10)]
    tables = apply_effects(e for effects in OrderMetricsPlugin().effects(stream, BatchContext()) for e in effects)
    assert tables["order_metrics"][_HOURLY]["total_revenue"] == Decimal("1.00")


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        pytest.param({}, [["order", "status=created"], [], ["status=completed"]], id="within-batch-first-claims"),
        pytest.param(
            {("o-1", "order"): "e-0", ("o-1", "status=created"): "e-0"},
            [[], [], ["status=completed"]],
            id="claimed-by-another-event",
        ),
        pytest.param(
            {("o-1", "order"): "e-1", ("o-1", "status=created"): "e-1"},
            [["order", "status=created"], [], ["status=completed"]],
            id="claimed-by-itself-is-a-retry",
        ),
    ],
)
def test_orders_and_statuses_count_once(claims: dict[tuple[str, str], str], expected: list[list[str]]) -> None:
    # GIVEN o-1 created twice (different event ids, one in another case), then o-1 completed
    stream = [
        make_event(order_data(status="created"), event_id="e-1"),
        make_event(order_data(status="CREATED"), event_id="e-2"),
        make_event(order_data(status="completed"), event_id="e-3"),
    ]
    # WHEN the plugin runs with these stored claims
    got = OrderMetricsPlugin().effects(stream, make_context(claims=claims))
    # THEN each event takes the claims nobody else holds, and a duplicate has no effects at all
    assert [
        [dict(e.key)["claim"] for e in effects_of(PutOnce, effects) if isinstance(e, PutOnce)] for effects in got
    ] == expected
    assert got[1] == []
