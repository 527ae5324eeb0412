"""Property: on small random streams (out of order, duplicated, with late events) Flink's items are the reference's.

One Flink job per example would cost seconds each; instead each example holds many independent
scenarios, each on its own day (ids prefixed by the scenario), concatenated into one stream and run as
one job. A day apart is far more than a scenario's span plus the allowed lateness, so no scenario's
watermark makes another's events late and no window spans two: one job answers for all of them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.local import run_job, stage
from analytics.reference import expected_windows
from pipeline.events import Event
from tests.analytics.events import at, order, view

pytestmark = pytest.mark.flink

SCENARIOS_PER_JOB = 12
_SPAN_MS = 12 * 60_000
_STATUSES = ["created", "CREATED", "completed", "Complete", "FULFILLED", "cancelled", "canceled", "shipped"]
# up to the event model's ten places, all carried exactly by the SQL's DECIMAL(38, 10)
_TOTALS = ["0", "0.01", "10.5", "99.999999", "1234.56", "0.0000001", "0.0000000001"]
_DURATIONS = [None, None, 0, 3, 2.5, 0.0005, 0.0004, 123.4567]


@st.composite
def scenario(draw: st.DrawFn, day: int) -> list[Event]:
    """Up to 25 events within 12 minutes of day ``day`` of the twelve before ``BASE``, out of order, some sent twice.

    Each event arrives after a random delay of up to a per-scenario bound (none, 2 s, a minute, ten
    minutes): small bounds give streams nearly in order, where only ties and the allowed lateness
    decide; large ones give many late events and orders whose first event arrives after a later one.
    """
    bound = draw(st.sampled_from([0, 2_000, 60_000, 600_000]))
    timed: list[tuple[int, int, Event]] = []
    for i in range(draw(st.integers(1, 25))):
        offset = draw(st.integers(0, _SPAN_MS))
        # the days before BASE, in order: days after it would soon be past the future horizon of today's clock
        days_before = SCENARIOS_PER_JOB - day
        when = at(hours=-24 * days_before, seconds=offset / 1000, micro=draw(st.sampled_from([0, 0, 1, 999])))
        event_id = f"d{day}-e{i:02d}"
        user = draw(st.sampled_from(["u-1", "u-2", "u-3", None]))
        if draw(st.integers(0, 3)) < 3:
            product = draw(st.sampled_from(["p-1", "p-2", "p-3"]))
            event = view(event_id, when, product, user=user, duration=draw(st.sampled_from(_DURATIONS)))
        else:
            order_id = f"d{day}-o{draw(st.integers(0, 2))}"
            status, total = draw(st.sampled_from(_STATUSES)), draw(st.sampled_from(_TOTALS))
            event = order(event_id, when, order_id, status, total=total, user=user)
        timed.append((offset + draw(st.integers(0, bound)), i, event))
    arrival = [event for _, _, event in sorted(timed)]
    for _ in range(draw(st.integers(0, 3))):  # resends: a copy arriving after the original
        first = draw(st.integers(0, len(arrival) - 1))
        arrival.insert(draw(st.integers(first + 1, len(arrival))), arrival[first])
    return arrival


@st.composite
def streams(draw: st.DrawFn) -> list[Event]:
    return [event for day in range(SCENARIOS_PER_JOB) for event in draw(scenario(day))]


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    stream=streams(),
    lateness_ms=st.sampled_from([0, 1, 1_000, 30_000, 120_000]),
)
def test_flink_items_and_late_events_equal_the_reference(
    flink: dict[str, str], tmp_path_factory: pytest.TempPathFactory, stream: list[Event], lateness_ms: int
) -> None:
    # GIVEN a stream of many scenarios and an allowed lateness
    lateness = timedelta(milliseconds=lateness_ms)
    workdir: Path = tmp_path_factory.mktemp("property")
    # WHEN Flink runs the job over it in this arrival order
    staged = stage(stream, workdir / "events.ndjson")
    job = run_job(staged.path, workdir, lateness, cluster=flink)
    # THEN every item of every metric equals the reference's, the late events' counts included
    expected = expected_windows(stream, lateness)
    assert job.all_items() == expected.items
    assert job.late_events == len(expected.late)
    assert [r.event_id for r in staged.rejected] == expected.rejected
