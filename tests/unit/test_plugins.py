"""The plugins: buckets by event time in UTC, exact money, order claims, sessions, metric keys, and
the property that cutting a stream into batches never changes what the stores end up holding."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.consumer.context import ContextLoaderFromStore
from pipeline.events import (
    Event,
    EventData,
    EventType,
    OrderData,
    OrderItem,
    ProductViewData,
    SystemMetricData,
    UserActivityData,
    new_event,
)
from pipeline.metrics.effects import Add, Effect, Extreme, ItemKey, Message, PutOnce, Scalar
from pipeline.plugins import (
    REGISTRY,
    BatchContext,
    OrderMetricsPlugin,
    ProductViewsPlugin,
    SystemMetricsPlugin,
    UserActivityPlugin,
    plugins_for,
)
from pipeline.plugins.orders import claim_key, normalise_status
from pipeline.plugins.timefmt import (
    STAMP_LENGTH,
    day_bucket,
    epoch_seconds,
    hour_bucket,
    minute_bucket,
    parse_stamp,
    stamp,
)
from pipeline.retry import NO_DEADLINE, Deadline
from tests.strategies import events, money, shifted, timestamps
from tools.generate import generate_events
from tools.oracle import Tables, apply_effects, expected_messages, expected_tables, messages_of

T0 = datetime(2026, 11, 24, 10, 15, 0, 250_000, tzinfo=UTC)


def _event(
    data: EventData, at: datetime = T0, event_id: str = "e-1", user_id: str | None = "u-1", subtype: str | None = None
) -> Event:
    return new_event(event_id=event_id, timestamp=at, source="web", data=data, user_id=user_id, event_subtype=subtype)


def _context(
    *,
    sessions: dict[str, tuple[datetime, datetime]] | None = None,
    segments: dict[str, str] | None = None,
    claims: dict[tuple[str, str], str] | None = None,
) -> BatchContext:
    """A context holding these stored items, keyed as the plugins declare them."""
    items: dict[tuple[str, ItemKey], dict[str, object]] = {}
    for user, (last, start) in (sessions or {}).items():
        items[("user_sessions", (("user_id", user),))] = {"last_activity": stamp(last), "session_start": stamp(start)}
    for user, segment in (segments or {}).items():
        items[("users", (("user_id", user),))] = {"user_id": user, "user_segment": segment}
    for (order_id, claim), event_id in (claims or {}).items():
        items[("order_claims", claim_key(order_id, claim))] = {"event_id": event_id}
    return BatchContext(items)


def _order(order_id: str = "o-1", status: str = "created", total: str = "59.97") -> OrderData:
    return OrderData(
        order_id,
        Decimal(total),
        (OrderItem("p-1", 2, Decimal("19.99")), OrderItem("p-2", 1, Decimal("19.99"))),
        status,
    )


def _activity(at: datetime, event_id: str, user_id: str | None = "u-1", page_url: str | None = "/") -> Event:
    return _event(UserActivityData("page_view", page_url, "s-1"), at, event_id, user_id)


def _first_occurrences(raw: Sequence[Event]) -> list[Event]:
    """What the processor hands the plugins: the first event of each id, in stream order."""
    seen: set[str] = set()
    unique = []
    for event in raw:
        if event.event_id not in seen:
            seen.add(event.event_id)
            unique.append(event)
    return unique


def _row(effects: Sequence[Effect]) -> PutOnce:
    (row,) = (e for e in effects if isinstance(e, PutOnce))
    return row


def _of(kind: type[Effect], effects: Sequence[Effect]) -> list[Effect]:
    return [e for e in effects if isinstance(e, kind)]


# --------------------------------------------------------------------------- time formatting


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param(T0, "2026-11-24T10:15:00.250000Z", id="utc"),
        pytest.param(datetime(2026, 11, 24, tzinfo=UTC), "2026-11-24T00:00:00.000000Z", id="whole-second-keeps-width"),
        pytest.param(
            datetime(2026, 11, 25, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2026-11-24T20:00:00.000000Z",
            id="offset-normalised-to-previous-utc-day",
        ),
        pytest.param(datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "0005-01-02T03:04:05.000006Z", id="year-zero-padded"),
    ],
)
def test_stamp_is_fixed_width_utc(when: datetime, expected: str) -> None:
    # GIVEN an aware datetime WHEN stamped THEN the fixed-width UTC text, and buckets are its prefixes
    assert stamp(when) == expected
    assert len(expected) == STAMP_LENGTH
    assert parse_stamp(expected) == when
    assert day_bucket(when) == expected[:10]
    assert hour_bucket(when) == f"{expected[:10]}#{expected[11:13]}"
    assert minute_bucket(when) == expected[:16]


@given(timestamps, timestamps, st.integers(-14 * 60, 14 * 60))
def test_stamps_sort_like_times(a: datetime, b: datetime, offset_minutes: int) -> None:
    # GIVEN two instants, one written in another offset WHEN stamped THEN string order is time order
    sa, sb = stamp(shifted(a, offset_minutes)), stamp(b)
    assert (sa < sb) == (a < b)
    assert (sa == sb) == (a == b)
    assert parse_stamp(sa) == a


def test_naive_times_are_refused_not_guessed() -> None:
    # GIVEN a naive datetime WHEN stamped or turned to epoch seconds THEN ValueError
    with pytest.raises(ValueError, match="naive"):
        stamp(datetime(2026, 11, 24, 10, 0))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="naive"):
        epoch_seconds(datetime(2026, 11, 24, 10, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="stamp"):
        parse_stamp("2026-11-24T10:00:00+00:00")


# --------------------------------------------------------------------------- registry


def test_registry_covers_every_event_type_once() -> None:
    # GIVEN the registry WHEN asked per type THEN exactly one plugin each, with distinct names
    assert len({p.name for p in REGISTRY}) == len(REGISTRY)
    for event_type in EventType:
        (plugin,) = plugins_for(event_type)
        assert event_type in plugin.event_types


@given(st.lists(events(), max_size=12))
@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
def test_plugins_on_any_events(raw: list[Event]) -> None:
    # GIVEN any events (any type, hostile text in every field), deduplicated as the processor does
    stream = _first_occurrences(raw)
    context = BatchContext()
    everything: list[Effect] = []
    # WHEN each plugin sees them all
    for plugin in REGISTRY:
        got = plugin.effects(stream, context)
        # THEN one list per event, and a prefix of the batch gets exactly the prefix of the effects
        assert len(got) == len(stream)
        for cut in range(len(stream)):
            assert plugin.effects(stream[:cut], context) == got[:cut]
        # AND nothing for events of other types; never a float in a stored value
        for event, effects in zip(stream, got, strict=True):
            if event.event_type not in plugin.event_types:
                assert effects == []
            for effect in effects:
                values: list[object] = []
                if isinstance(effect, Add):
                    values += effect.amounts.values()
                elif isinstance(effect, PutOnce):
                    values += effect.item.values()
                elif isinstance(effect, Extreme):
                    values += [effect.value, *effect.companions.values()]
                assert all(isinstance(v, str | int | Decimal) and not isinstance(v, bool) for v in values)
            everything.extend(effects)
    # AND as one batch from empty stores, they give the oracle's tables and messages
    assert apply_effects(everything) == expected_tables(raw)
    assert messages_of(everything) == expected_messages(raw)


# --------------------------------------------------------------------------- orders

_HOURLY = (("metric_type", "hourly_orders"), ("time_bucket", "2026-11-24#10"))
_DAILY = (("metric_type", "daily_orders"), ("time_bucket", "2026-11-24"))


_STATUS_HOURLY = (("metric_type", "hourly_order_status"), ("time_bucket", "2026-11-24#10#created"))
_STATUS_DAILY = (("metric_type", "daily_order_status"), ("time_bucket", "2026-11-24#created"))


def test_first_order_event_claims_the_order_and_its_status() -> None:
    # GIVEN an order's first event WHEN the plugin runs
    (effects,) = OrderMetricsPlugin().effects([_event(_order())], BatchContext())
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
    context = _context(claims={("o-1", "order"): "e-0"})
    # WHEN the plugin runs THEN only that status's counters, besides its status items
    (effects,) = OrderMetricsPlugin().effects([_event(_order(status=status))], context)
    main = [a for a in _of(Add, effects) if isinstance(a, Add) and a.key in (_HOURLY, _DAILY)]
    assert main == [Add("order_metrics", _HOURLY, amounts), Add("order_metrics", _DAILY, amounts)]


@pytest.mark.parametrize("status", ["pending", "placed", "shipped", "refunded"])
def test_every_other_status_is_counted_under_its_name(status: str) -> None:
    # GIVEN an order already counted, in a status with no counter of its own
    context = _context(claims={("o-1", "order"): "e-0"})
    # WHEN the plugin runs THEN it is counted in that status's items: no valid event disappears
    (effects,) = OrderMetricsPlugin().effects([_event(_order(status=status))], context)
    assert [dict(a.key)["time_bucket"] for a in _of(Add, effects) if isinstance(a, Add)] == [
        f"2026-11-24#10#{status}",
        f"2026-11-24#{status}",
    ]


def test_completed_order_sends_one_fulfilment_message_deduplicated_by_event_id() -> None:
    # GIVEN a completed order WHEN the plugin runs
    (effects,) = OrderMetricsPlugin().effects([_event(_order(status="completed"), event_id="e-9")], BatchContext())
    # THEN one FIFO message, grouped by order, deduplicated by event id, money as exact text
    assert _of(Message, effects) == [
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
    late = _event(_order("o-1"), datetime(2026, 11, 24, 9, 59, tzinfo=UTC), "e-1")
    offset = _event(
        _order("o-2"), datetime(2026, 11, 25, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))), "e-2"
    )
    # WHEN the plugin runs
    got = OrderMetricsPlugin().effects([late, offset], BatchContext())
    # THEN each counts in the UTC hour and day of its own event time
    buckets = [
        [
            dict(a.key)["time_bucket"]
            for a in _of(Add, effects)
            if isinstance(a, Add) and str(a.key[0][1]).endswith("orders")
        ]
        for effects in got
    ]
    assert buckets == [["2026-11-24#09", "2026-11-24"], ["2026-11-24#20", "2026-11-24"]]


def test_money_sums_exactly() -> None:
    # GIVEN ten orders of 0.10 in one hour WHEN their effects are folded THEN revenue is exactly 1.00
    stream = [_event(_order(f"o-{i}", total="0.10"), T0, f"e-{i}") for i in range(10)]
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
        _event(_order(status="created"), event_id="e-1"),
        _event(_order(status="CREATED"), event_id="e-2"),
        _event(_order(status="completed"), event_id="e-3"),
    ]
    # WHEN the plugin runs with these stored claims
    got = OrderMetricsPlugin().effects(stream, _context(claims=claims))
    # THEN each event takes the claims nobody else holds, and a duplicate has no effects at all
    assert [
        [dict(e.key)["claim"] for e in _of(PutOnce, effects) if isinstance(e, PutOnce)] for effects in got
    ] == expected
    assert got[1] == []


# --------------------------------------------------------------------------- product views


_KEY_P1 = (("product_id", "p-1"), ("metric_date", "2026-11-24"))


def test_product_view_counts_into_its_daily_item_and_hour() -> None:
    # GIVEN two views of one product, the second earlier and in another hour
    stream = [
        _event(ProductViewData("p-1"), T0, "e-1"),
        _event(ProductViewData("p-1"), datetime(2026, 11, 24, 0, 5, tzinfo=timezone(timedelta(hours=-3))), "e-2"),
    ]
    # WHEN folded
    got = ProductViewsPlugin().effects(stream, BatchContext())
    tables = apply_effects(e for effects in got for e in effects)
    # THEN one daily item: the count, the UTC-hour histogram, and the latest view (never rewound)
    assert tables["product_metrics"] == {
        _KEY_P1: {
            "product_id": "p-1",
            "metric_date": "2026-11-24",
            "view_count": 2,
            "hour_10": 1,
            "hour_03": 1,
            "last_viewed": "2026-11-24T10:15:00.250000Z",
        }
    }
    assert _of(Extreme, got[1]) == [
        Extreme("product_metrics", _KEY_P1, "last_viewed", "2026-11-24T03:05:00.000000Z", "max")
    ]


# --------------------------------------------------------------------------- user activity

_MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("stored", "offsets_minutes", "durations", "session_starts"),
    [
        pytest.param(None, [0], [0], [0], id="first-activity-starts-a-session"),
        pytest.param(None, [0, 10, 40], [0, 600, 2400], [0, 0, 0], id="continues-within-timeout"),
        pytest.param(None, [0, 30], [0, 1800], [0, 0], id="gap-of-exactly-the-timeout-continues"),
        pytest.param(None, [0, 31, 32], [0, 0, 60], [0, 31, 31], id="longer-gap-starts-a-new-session"),
        pytest.param(None, [10, 5, 12], [0, 0, 120], [10, None, 10], id="late-event-scores-0-and-moves-nothing"),
        pytest.param((-5, -20), [0], [1200], [-20], id="continues-the-stored-session"),
        pytest.param((-45, -60), [0], [0], [0], id="stored-session-expired"),
        pytest.param((5, -60), [0], [0], [None], id="older-than-stored-is-late"),
    ],
)
def test_session_fold(
    stored: tuple[int, int] | None,
    offsets_minutes: list[int],
    durations: list[int],
    session_starts: list[int | None],
) -> None:
    # GIVEN a stored session (last, start as minutes from T0) and activities at these minutes
    sessions = {} if stored is None else {"u-1": (T0 + stored[0] * _MIN, T0 + stored[1] * _MIN)}
    stream = [_activity(T0 + m * _MIN, f"e-{i}") for i, m in enumerate(offsets_minutes)]
    # WHEN the plugin runs
    got = UserActivityPlugin().effects(stream, _context(sessions=sessions))
    # THEN each row carries its duration, and only events that advance the session carry its new state
    assert [_row(effects).item["session_duration"] for effects in got] == durations
    for effects, start, offset in zip(got, session_starts, offsets_minutes, strict=True):
        extremes = _of(Extreme, effects)
        if start is None:
            assert extremes == []
        else:
            assert extremes == [
                Extreme(
                    "user_sessions",
                    (("user_id", "u-1"),),
                    "last_activity",
                    stamp(T0 + offset * _MIN),
                    "max",
                    {"session_start": stamp(T0 + start * _MIN)},
                )
            ]


def test_duration_is_whole_seconds_rounded_down() -> None:
    # GIVEN two activities 59.999999 s apart WHEN the plugin runs THEN the second lasted 59 s
    stream = [_activity(T0, "e-1"), _activity(T0 + timedelta(seconds=59, microseconds=999_999), "e-2")]
    got = UserActivityPlugin().effects(stream, BatchContext())
    assert _row(got[1]).item["session_duration"] == 59


class _CentralEurope2026(tzinfo):
    """A zone with a DST switch (CET to CEST at 2026-03-29 02:00 local) that needs no tz database."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        summer = dt is not None and (dt.year, dt.month, dt.day, dt.hour) >= (2026, 3, 29, 2)
        return timedelta(hours=2 if summer else 1)

    def dst(self, dt: datetime | None) -> timedelta:
        return self.utcoffset(dt) - timedelta(hours=1)

    def tzname(self, dt: datetime | None) -> str:
        return "CEST" if self.dst(dt) else "CET"


def test_sessions_measure_real_time_across_a_dst_switch() -> None:
    # GIVEN two activities in one DST zone, 01:50 CET and 03:10 CEST: 20 real minutes, 80 on the wall
    zone = _CentralEurope2026()
    stream = [
        _activity(datetime(2026, 3, 29, 1, 50, tzinfo=zone), "e-1"),
        _activity(datetime(2026, 3, 29, 3, 10, tzinfo=zone), "e-2"),
    ]
    # WHEN the plugin runs THEN one session of 20 minutes (same-zone arithmetic would say 80)
    got = UserActivityPlugin().effects(stream, BatchContext())
    assert [_row(effects).item["session_duration"] for effects in got] == [0, 1200]


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        pytest.param({}, "new", id="default-segment"),
        pytest.param({"u-1": "vip"}, "vip", id="known-segment"),
    ],
)
def test_activity_row(segments: dict[str, str], expected: str) -> None:
    # GIVEN an activity without a page url WHEN the plugin runs
    (effects,) = UserActivityPlugin().effects([_activity(T0, "e-1", page_url=None)], _context(segments=segments))
    # THEN one put-once row, keyed by stamp and event id, with segment and a 30-day ttl; no page_url
    sort_key = "2026-11-24T10:15:00.250000Z#e-1"
    assert effects[0] == PutOnce(
        "user_activities",
        (("user_id", "u-1"), ("timestamp", sort_key)),
        {
            "user_id": "u-1",
            "timestamp": sort_key,
            "activity_type": "page_view",
            "session_id": "s-1",
            "session_duration": 0,
            "user_segment": expected,
            "event_id": "e-1",
            "ttl": int(datetime(2026, 12, 24, 10, 15, tzinfo=UTC).timestamp()),
        },
    )


def test_activities_in_the_same_microsecond_get_distinct_rows() -> None:
    # GIVEN two activities at the same instant WHEN the plugin runs THEN two distinct row keys
    got = UserActivityPlugin().effects([_activity(T0, "e-1"), _activity(T0, "e-2")], BatchContext())
    assert _row(got[0]).key != _row(got[1]).key


def test_users_have_independent_sessions() -> None:
    # GIVEN two users interleaved WHEN the plugin runs THEN each folds only their own activities
    stream = [
        _activity(T0, "e-1", "u-1"),
        _activity(T0 + 5 * _MIN, "e-2", "u-2"),
        _activity(T0 + 10 * _MIN, "e-3", "u-1"),
    ]
    got = UserActivityPlugin().effects(stream, BatchContext())
    assert [_row(effects).item["session_duration"] for effects in got] == [0, 0, 600]


# --------------------------------------------------------------------------- system metrics


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
        _event(SystemMetricData("lat", Decimal(v), "ms", {"s": "a"}), T0 + timedelta(seconds=s), f"e-{i}", None)
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


# --------------------------------------------------------------------------- batching never changes results


def _run_batch(batch: Sequence[Event], context: BatchContext) -> list[Effect]:
    """What the processor does: each plugin gets the batch's events of its types, in stream order."""
    out: list[Effect] = []
    for plugin in REGISTRY:
        mine = [e for e in batch if e.event_type in plugin.event_types]
        if mine:
            for effects in plugin.effects(mine, context):
                out.extend(effects)
    return out


class _TablesReader:
    """The stores the previous batches wrote, read the way the context loader reads DynamoDB."""

    def __init__(self, tables: Tables, segments: dict[str, str]) -> None:
        self.tables = tables
        self.users: dict[ItemKey, dict[str, Scalar]] = {
            (("user_id", u),): {"user_id": u, "user_segment": s} for u, s in segments.items()
        }

    def read(
        self, table: str, keys: Sequence[ItemKey], deadline: Deadline = NO_DEADLINE
    ) -> dict[ItemKey, dict[str, object]]:
        stored = self.users if table == "users" else self.tables.get(table, {})
        return {key: dict(stored[key]) for key in keys if key in stored}


def _in_batches(raw: Sequence[Event], cuts: Sequence[int], segments: dict[str, str]) -> tuple[Tables, list[Effect]]:
    """Run the stream batch by batch, reading context from the store the previous batches wrote."""
    unique = _first_occurrences(raw)
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(unique)), len(unique)]
    tables: Tables = {}
    everything: list[Effect] = []
    loader = ContextLoaderFromStore(_TablesReader(tables, segments), REGISTRY)
    for lo, hi in itertools.pairwise(bounds):
        batch = unique[lo:hi]
        effects = _run_batch(batch, loader.load(batch))
        apply_effects(effects, tables)
        everything.extend(effects)
    return tables, everything


_USERS = ("u-1", "u-2", "u-3")
_ORDERS = ("o-1", "o-2")
_STATUSES = ("created", "CREATED", "completed", "Cancelled", "pending", "Fulfilled", "shipped", "canceled")
_SUBTYPES = (None, "order_created", "order_completed")
_PRODUCTS = ("p-1", "p-2")


_ITEMS = st.lists(st.builds(OrderItem, st.sampled_from(_PRODUCTS), st.integers(1, 3), money), min_size=1, max_size=2)
_ORDER_DATA = st.builds(OrderData, st.sampled_from(_ORDERS), money, _ITEMS.map(tuple), st.sampled_from(_STATUSES))
_ACTIVITY_DATA = st.builds(
    UserActivityData, st.sampled_from(("login", "search")), st.sampled_from((None, "/")), st.sampled_from((None, "s-1"))
)
_DATA = st.one_of(
    _ORDER_DATA,
    _ORDER_DATA,
    _ACTIVITY_DATA,
    _ACTIVITY_DATA,
    st.builds(ProductViewData, st.sampled_from(_PRODUCTS)),
    st.builds(
        SystemMetricData,
        st.just("cpu"),
        st.decimals(-100, 100, places=1),
        st.just("percent"),
        st.sampled_from(({}, {"s": "a"}, {"s": "a", "r": "b"})),
    ),
)


@st.composite
def _colliding_streams(draw: st.DrawFn) -> list[Event]:
    """Streams squeezed onto few users, orders, products and series, over three hours on a 5-minute
    grid (so gaps of exactly the timeout happen), written in random UTC offsets, with some event ids
    repeated: sessions continue, expire and see late events; orders collide on (order_id, status).

    Built from small strategies rather than ``tests.strategies.events`` (five times slower): hostile
    text is covered by ``test_plugins_on_any_events``; this property is about collisions and order.
    """
    stream: list[Event] = []
    for i in range(draw(st.integers(12, 40))):
        data = draw(_DATA)
        at = T0 + timedelta(
            minutes=5 * draw(st.integers(0, 36)), microseconds=draw(st.sampled_from((0, 0, 1, 999_999)))
        )
        event_id = f"e-{i}" if not stream or draw(st.integers(0, 9)) else stream[-1].event_id
        user = draw(st.sampled_from(_USERS if isinstance(data, UserActivityData) else (None, *_USERS)))
        stream.append(
            new_event(
                event_id=event_id,
                timestamp=shifted(at, draw(st.integers(-600, 600))),
                source="web",
                data=data,
                user_id=user,
                event_subtype=draw(st.sampled_from(_SUBTYPES)),
            )
        )
    return stream


@given(
    _colliding_streams(),
    st.lists(st.integers(1, 30), max_size=10),
    st.dictionaries(st.sampled_from(_USERS), st.sampled_from(("vip", "returning"))),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_batching_gives_the_oracle_tables(stream: list[Event], cuts: list[int], segments: dict[str, str]) -> None:
    # GIVEN a stream with colliding users and orders, and repeated event ids
    # WHEN it is cut into batches at random points and each batch reads its context from the store
    tables, effects = _in_batches(stream, cuts, segments)
    # THEN the store holds exactly what the oracle computes for the whole stream, and the same messages
    assert tables == expected_tables(stream, user_segments=segments)
    assert messages_of(effects) == expected_messages(stream)


@pytest.mark.parametrize("seed", [pytest.param(1, id="seed-1"), pytest.param(2, id="seed-2")])
def test_reference_workload_in_random_batches_gives_the_oracle_tables(seed: int) -> None:
    # GIVEN the reference workload (realistic sessions and order life cycles)
    stream = list(generate_events(3_000, seed))
    rng = random.Random(seed)
    cuts = rng.sample(range(1, len(stream)), 40)
    # WHEN cut into 41 batches of random sizes
    tables, effects = _in_batches(stream, cuts, {"u-000001": "vip"})
    # THEN the oracle's tables and messages
    assert tables == expected_tables(stream, user_segments={"u-000001": "vip"})
    assert messages_of(effects) == expected_messages(stream)
    assert len(tables) == 6
