"""The pure parts of load runs: schedules, percentiles, what limited a run, where the state lives."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from load.drive import DriveReport
from load.lag import LagReport, percentile
from load.replay import ReplayLoad
from load.synthetic import SyntheticLoad
from tools.generate import WorkloadSpec, generate_events
from tools.local.state import default_state_dir


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        pytest.param([], 50, 0.0, id="empty"),
        pytest.param([3.0], 99, 3.0, id="one"),
        pytest.param([float(v) for v in range(1, 101)], 50, 50.0, id="p50-of-100"),
        pytest.param([float(v) for v in range(1, 101)], 95, 95.0, id="p95-of-100"),
        pytest.param([float(v) for v in range(1, 101)], 99, 99.0, id="p99-of-100"),
    ],
)
def test_percentiles_are_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_a_lag_that_grows_over_the_run_says_the_consumer_is_saturated() -> None:
    steady = LagReport(lags_s=[1.0, 1.2, 0.9, 1.1, 1.0, 1.3, 1.1, 0.8])
    growing = LagReport(lags_s=[1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 20.0, 24.0])
    assert not steady.as_dict()["consumer_saturated"]
    assert growing.as_dict()["consumer_saturated"]
    assert growing.as_dict()["first_quarter_p50_ms"] == 1000


def test_a_replay_keeps_the_original_gaps_scaled_by_the_speed() -> None:
    # GIVEN 100 events over 20 s of event time
    events = list(generate_events(100, 1, WorkloadSpec(duration=timedelta(seconds=20))))
    # WHEN replayed at 10x
    schedule = list(ReplayLoad(events, speed=10).schedule())
    # THEN each event is due at its event-time offset / 10, ids kept
    first = events[0].timestamp
    assert [offset for offset, _ in schedule] == [(e.timestamp - first).total_seconds() / 10 for e in events]
    assert [e.event_id for _, e in schedule] == [e.event_id for e in events]


def test_a_replay_at_a_rate_spaces_events_evenly_and_new_ids_are_fresh_and_deterministic() -> None:
    events = list(generate_events(50, 2))
    run = str(uuid.uuid4())
    load = ReplayLoad(events, rate=25, new_ids=True, run_id=run)
    schedule = list(load.schedule())
    assert [offset for offset, _ in schedule] == [i / 25 for i in range(50)]
    renamed = [e.event_id for _, e in schedule]
    assert not set(renamed) & {e.event_id for e in events}
    assert renamed == [e.event_id for _, e in ReplayLoad(events, rate=25, new_ids=True, run_id=run).schedule()]
    assert [e.timestamp for _, e in schedule] == [e.timestamp for e in events]
    assert load.span_s == pytest.approx(49 / 25)


def test_a_replay_wants_exactly_one_pace() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ReplayLoad([], speed=2, rate=3)


def test_a_synthetic_run_is_rate_times_seconds_events_dated_over_the_run_and_reproducible() -> None:
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    load = SyntheticLoad(rate=100, seconds=3, seed=4, start=start)
    events = list(load.generate())
    assert len(events) == 300
    assert all(start <= e.timestamp < start + timedelta(seconds=3) for e in events)
    assert [e.event_id for e in SyntheticLoad(100, 3, 4, start).generate()] == [e.event_id for e in events]
    assert [offset for offset, _ in load.schedule()][:3] == [0.0, 0.01, 0.02]


def test_a_run_that_kept_its_schedule_names_no_limit_and_a_slow_one_says_why() -> None:
    kept = DriveReport(target_rate=100, events=1000, schedule_s=10.0, elapsed_s=10.2)
    assert kept.limited_by() == ""
    slow = DriveReport(target_rate=100, events=1000, schedule_s=10.0, elapsed_s=20.0, put_s=15.0, source_s=1.0)
    slow.producer = {"put_calls": 40, "throttled_calls": 0}
    assert "PutRecords" in slow.limited_by()
    slow.producer["throttled_calls"] = 3
    assert "throttled 3" in slow.limited_by()


def test_the_state_dir_is_per_user_and_overridable(tmp_path: Path) -> None:
    assert default_state_dir({"PIPELINE_STATE_DIR": str(tmp_path)}) == tmp_path
    assert default_state_dir({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "event-pipeline"
    assert default_state_dir({"HOME": str(tmp_path)}).name == "event-pipeline"
    assert default_state_dir({"XDG_STATE_HOME": "relative"}) == Path.home() / ".local/state/event-pipeline"
