"""The user-activity plugin: sessions folded across batches and DST switches, whole-second durations,
one row per activity, and independent sessions per user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

import pytest

from pipeline.metrics.effects import Extreme, PutOnce
from pipeline.plugins import BatchContext, UserActivityPlugin
from pipeline.plugins.timefmt import stamp
from tests.plugin_cases import T0, activity_event, effects_of, make_context, only_row

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
    stream = [activity_event(T0 + m * _MIN, f"e-{i}") for i, m in enumerate(offsets_minutes)]
    # WHEN the plugin runs
    got = UserActivityPlugin().effects(stream, make_context(sessions=sessions))
    # THEN each row carries its duration, and only events that advance the session carry its new state
    assert [only_row(effects).item["session_duration"] for effects in got] == durations
    for effects, start, offset in zip(got, session_starts, offsets_minutes, strict=True):
        extremes = effects_of(Extreme, effects)
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
    stream = [activity_event(T0, "e-1"), activity_event(T0 + timedelta(seconds=59, microseconds=999_999), "e-2")]
    got = UserActivityPlugin().effects(stream, BatchContext())
    assert only_row(got[1]).item["session_duration"] == 59


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
        activity_event(datetime(2026, 3, 29, 1, 50, tzinfo=zone), "e-1"),
        activity_event(datetime(2026, 3, 29, 3, 10, tzinfo=zone), "e-2"),
    ]
    # WHEN the plugin runs THEN one session of 20 minutes (same-zone arithmetic would say 80)
    got = UserActivityPlugin().effects(stream, BatchContext())
    assert [only_row(effects).item["session_duration"] for effects in got] == [0, 1200]


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        pytest.param({}, "new", id="default-segment"),
        pytest.param({"u-1": "vip"}, "vip", id="known-segment"),
    ],
)
def test_activity_row(segments: dict[str, str], expected: str) -> None:
    # GIVEN an activity without a page url WHEN the plugin runs
    (effects,) = UserActivityPlugin().effects(
        [activity_event(T0, "e-1", page_url=None)], make_context(segments=segments)
    )
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
    got = UserActivityPlugin().effects([activity_event(T0, "e-1"), activity_event(T0, "e-2")], BatchContext())
    assert only_row(got[0]).key != only_row(got[1]).key


def test_users_have_independent_sessions() -> None:
    # GIVEN two users interleaved WHEN the plugin runs THEN each folds only their own activities
    stream = [
        activity_event(T0, "e-1", "u-1"),
        activity_event(T0 + 5 * _MIN, "e-2", "u-2"),
        activity_event(T0 + 10 * _MIN, "e-3", "u-1"),
    ]
    got = UserActivityPlugin().effects(stream, BatchContext())
    assert [only_row(effects).item["session_duration"] for effects in got] == [0, 0, 600]
