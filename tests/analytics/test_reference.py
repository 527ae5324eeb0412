"""The reference windows on small streams worked out by hand: the rules the Flink job is held to."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from analytics.reference import LateEvent, expected_windows
from pipeline.plugins.timefmt import stamp
from tests.analytics.events import BASE, activity, at, order, unvalidated, view

S = timedelta(seconds=1)


def _ms(seconds: float) -> int:
    return int((at(seconds).timestamp()) * 1000)


def test_an_event_at_or_before_the_watermark_it_saw_is_late_and_counted_once() -> None:
    # GIVEN allowed lateness 30 s and arrivals at 10 s, 50 s (watermark 20 s), 20 s, 21 s, 20 s again (a resend)
    late = activity("late", at(20))
    stream = [activity("a", at(10)), activity("b", at(50)), late, activity("c", at(21)), late]
    # WHEN the reference runs
    result = expected_windows(stream, 30 * S)
    # THEN the event at exactly the watermark is late, the one a millisecond after it is not, the resend is a duplicate
    assert result.late == [LateEvent("late", "user_activity", _ms(20), _ms(20))]
    assert (result.on_time, result.duplicates) == (3, 1)
    # AND the late event is counted in its own hour
    (item,) = result.items.values()
    assert item == {
        "pk": "late_events_1h#user_activity",
        "sk": stamp(BASE),
        "metric": "late_events_1h",
        "window_start": stamp(BASE),
        "window_end": stamp(BASE + timedelta(hours=1)),
        "event_type": "user_activity",
        "late_events": 1,
    }


def test_no_event_is_late_before_the_first_watermark() -> None:
    # GIVEN a lateness longer than the time since the epoch: no watermark is ever emitted
    stream = [activity("a", at(10)), activity("b", at(5))]
    assert expected_windows(stream, timedelta(days=365 * 100)).late == []
    # AND with a zero lateness, an equal time after the first event is already late
    assert [e.event_id for e in expected_windows([activity("a", at(5)), activity("b", at(5))], 0 * S).late] == ["b"]


def test_views_per_product_and_minute() -> None:
    # GIVEN three views of p-1 in minute 0 (two users and one anonymous, two durations) and one in minute 1
    stream = [
        view("v1", at(1), "p-1", user="u-1", duration=1),
        view("v2", at(2), "p-1", user="u-1", duration=2.0),
        view("v3", at(3), "p-1", user=None),
        view("v4", at(61), "p-1", user="u-2"),
    ]
    items = expected_windows(stream, 30 * S).items
    minute0 = items["product_views_1m#p-1", stamp(BASE)]
    # THEN counts, distinct non-null viewers and the mean over the views that carry a duration
    assert (minute0["view_count"], minute0["unique_viewers"], minute0["avg_session_duration"]) == (3, 1, Decimal("1.5"))
    assert minute0["window_end"] == stamp(BASE + timedelta(minutes=1))
    # AND a window where no view carries a duration has no average at all
    assert "avg_session_duration" not in items["product_views_1m#p-1", stamp(BASE + timedelta(minutes=1))]


def test_the_mean_duration_rounds_half_up_at_six_places() -> None:
    stream = [view(f"v{i}", at(i), "p-1", duration=d) for i, d in enumerate([0.001, 0.001, 0.0])]
    item = expected_windows(stream, 30 * S).items["product_views_1m#p-1", stamp(BASE)]
    assert item["avg_session_duration"] == Decimal("0.000667")  # 0.000666..., half up


def test_trends_count_each_view_in_the_five_windows_that_contain_its_minute() -> None:
    items = expected_windows([view("v", at(minutes=7, seconds=30), "p-1")], 30 * S).items
    starts = sorted(sk for (pk, sk) in items if pk == "product_trends_5m#p-1")
    assert starts == [stamp(BASE + timedelta(minutes=m)) for m in range(3, 8)]


def test_top_products_break_ties_by_product_id_and_keep_ten() -> None:
    # GIVEN twelve products in one minute: p-00 viewed three times, the others once each
    stream = [view(f"v{i}", at(i), f"p-{i % 12:02d}", user=None) for i in range(14)]
    stream.append(view("v-extra", at(40), "p-00", user=None))
    items = expected_windows(stream, 60 * S).items
    ranked = [items["top_products_1m", f"{stamp(BASE)}#{rank:02d}"] for rank in range(1, 11)]
    # THEN p-00 (3 views) then p-01 (2), then the one-view products in id order, ten in all
    assert [(i["product_id"], i["view_count"]) for i in ranked[:3]] == [("p-00", 3), ("p-01", 2), ("p-02", 1)]
    assert [i["rank"] for i in ranked] == list(range(1, 11))
    assert ("top_products_1m", f"{stamp(BASE)}#11") not in items


def test_orders_count_once_at_their_first_event_and_completions_at_the_first_completed_one() -> None:
    # GIVEN o-1 created at 06:59 and completed at 07:01 and again at 07:02; o-2 first seen completed at 07:30
    # (no created event); o-3 only cancelled; and two events of o-4 in the same millisecond: the first to
    # arrive counts
    stream = [
        order("e-1", at(minutes=59), "o-1", "created", total="10.00", user="u-1"),
        order("e-2", at(minutes=61), "o-1", "COMPLETE", total="10.00", user="u-1"),
        order("e-3", at(minutes=62), "o-1", "fulfilled", total="10.00", user="u-1"),
        order("e-4", at(minutes=90), "o-2", "Completed", total="5.50", user="u-2"),
        order("e-5", at(minutes=91), "o-3", "canceled", total="7.00", user=None),
        order("e-7", at(minutes=95), "o-4", "created", total="2.00", user="u-3"),
        order("e-6", at(minutes=95, micro=999), "o-4", "created", total="3.00", user="u-4"),
    ]
    items = expected_windows(stream, 30 * S).items
    hour6 = items["orders_1h", stamp(BASE)]
    hour7 = items["orders_1h", stamp(BASE + timedelta(hours=1))]
    assert {k: hour6[k] for k in ("orders", "revenue", "customers", "completed_orders", "completed_revenue")} == {
        "orders": 1,
        "revenue": Decimal("10.00"),
        "customers": 1,
        "completed_orders": 0,
        "completed_revenue": Decimal(0),
    }
    # THEN hour 7: o-2, o-3 and o-4 (at e-7, 2.00, u-3); completions of o-1 (once) and o-2
    assert {k: hour7[k] for k in ("orders", "revenue", "customers", "completed_orders", "completed_revenue")} == {
        "orders": 3,
        "revenue": Decimal("14.50"),
        "customers": 2,
        "completed_orders": 2,
        "completed_revenue": Decimal("15.50"),
    }


def test_a_late_first_event_moves_nothing_and_rejected_events_never_move_the_watermark() -> None:
    # GIVEN an order whose creation arrives late, after its completion; and a rejected order far in the future
    stream = [
        order("e-2", at(minutes=10), "o-1", "completed"),
        unvalidated(order("bad", at(hours=5), "o-9", "created"), total_amount=Decimal("0.00000000001")),
        activity("tick", at(minutes=20)),
        order("e-1", at(minutes=1), "o-1", "created"),
    ]
    result = expected_windows(stream, 30 * S)
    # THEN the rejected event is reported and did not make the others late; the creation is late
    assert result.rejected == ["bad"]
    assert [e.event_id for e in result.late] == ["e-1"]
    # AND the order counts once, at its completion (its first on-time event)
    hour = result.items["orders_1h", stamp(BASE)]
    assert (hour["orders"], hour["completed_orders"]) == (1, 1)
