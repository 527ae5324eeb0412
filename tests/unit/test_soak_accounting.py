"""The soak's accounting, fed deliberately wrong pipelines: it must see every loss and every double count.

The "stores" here are the oracle's tables of a different event stream: a pipeline whose dedup is broken
counts each resent copy as a new event, one that drops a batch lacks its events. If the accounting
passed those, ``pipeline soak`` would pass anything.
"""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest

from pipeline.events import Event, EventType
from tools.generate import generate_events
from tools.oracle import expected_tables
from tools.soak.accounting import account
from tools.soak.figures import percentiles
from tools.soak.plan import RESEND_DISTANCE, make_plan
from tools.soak.runtime import CrashingHandler
from tools.verify import numbers_as_decimal


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return list(generate_events(1_500, 21))


def _ids(events: list[Event]) -> list[str]:
    return [e.event_id for e in events]


def test_a_correct_pipeline_passes(events: list[Event]) -> None:
    # GIVEN a stream with every 10th event resent, and stores that counted each event once (as DynamoDB numbers)
    sent = events + events[::10]
    stores = numbers_as_decimal(expected_tables(sent))
    # WHEN accounted against the oracle, with an archive holding every copy
    verdict = account(stores, expected_tables(sent), _ids(sent), Counter(_ids(sent)))
    # THEN nothing is lost, double counted or mismatched; the archive's extra copies are reported, not failed
    assert verdict.ok and verdict.lost == verdict.double_counted == verdict.mismatched == 0
    assert verdict.archive_completeness == 1.0 and verdict.archive_duplicates == len(events[::10])


def test_a_broken_dedup_is_reported_as_double_counted(events: list[Event]) -> None:
    # GIVEN a pipeline whose dedup is broken: a resent copy counts as an event of its own
    resent = events[::10]
    sent = events + resent
    broken = expected_tables(events + [msgspec.structs.replace(e, event_id=f"{e.event_id}-again") for e in resent])
    # WHEN accounted
    verdict = account(broken, expected_tables(sent), _ids(sent), Counter(_ids(sent)))
    # THEN the soak fails, with at least one double count per resent product view
    views = sum(1 for e in resent if e.event_type is EventType.PRODUCT_VIEW)
    assert not verdict.ok and verdict.lost == 0
    assert verdict.double_counted >= views > 0
    assert verdict.examples


def test_a_dropped_batch_is_reported_as_lost_in_tables_and_archive(events: list[Event]) -> None:
    # GIVEN a pipeline that lost 100 events on their way to the tables and to the archive
    kept = events[:700] + events[800:]
    # WHEN accounted
    verdict = account(expected_tables(kept), expected_tables(events), _ids(events), Counter(_ids(kept)))
    # THEN the loss shows in both places and the soak fails
    assert not verdict.ok and verdict.double_counted == 0
    assert verdict.archive_missing == 100 and verdict.archive_completeness == pytest.approx(1 - 100 / 1_500)
    assert verdict.table_lost >= 100  # each lost event is at least one missing increment or item


def test_a_changed_value_that_is_no_count_is_a_mismatch(events: list[Event]) -> None:
    # GIVEN stores where one system metric's maximum is wrong (an extreme, not a counter)
    expected = expected_tables(events)
    stores = {t: {k: dict(v) for k, v in items.items()} for t, items in expected.items()}
    key = next(iter(stores["system_metrics"]))
    stores["system_metrics"][key]["max"] = -1
    # WHEN accounted
    verdict = account(stores, expected, _ids(events), Counter(_ids(events)))
    # THEN it is neither lost nor double counted, but it fails the soak
    assert (verdict.lost, verdict.double_counted, verdict.mismatched, verdict.ok) == (0, 0, 1, False)


def test_an_archived_event_never_sent_fails(events: list[Event]) -> None:
    verdict = account({}, {}, [], Counter({"stranger": 1}))
    assert verdict.archive_unexpected == 1 and not verdict.ok


def test_the_plan_resends_after_a_chunk_and_sends_late_events_last() -> None:
    # GIVEN a plan of 4,000 events at rate 0.05
    plan = make_plan(4_000, 0.05, seed=4)
    # THEN 200 events are late (sent after all others) and 200 resent, each resend after its first copy
    assert (plan.late, plan.resent, len(plan.sends)) == (200, 200, 4_200)
    first: dict[str, int] = {}
    gaps = []
    for position, event in enumerate(plan.sends):
        if event.event_id in first:
            gaps.append(position - first[event.event_id])
        else:
            first[event.event_id] = position
    assert len(gaps) == 200 and min(gaps) >= RESEND_DISTANCE
    late = plan.first_sends[-200:]
    assert max(e.timestamp for e in late) < max(e.timestamp for e in plan.first_sends[:-200])
    # AND the same seed gives the same plan
    assert _ids(make_plan(4_000, 0.05, seed=4).sends) == _ids(plan.sends)


def _event(n: int) -> dict[str, object]:
    records = [{"kinesis": {"sequenceNumber": str(i), "approximateArrivalTimestamp": 100.0}} for i in range(n)]
    return {"Records": records}


class _Rng:
    """A random source that answers what the test says."""

    def __init__(self, draws: list[float]) -> None:
        self._draws = draws

    def random(self) -> float:
        return self._draws.pop(0)

    def randint(self, a: int, b: int) -> int:
        return 2


@pytest.mark.parametrize(
    ("draw", "mode", "handler_ran"),
    [
        pytest.param(0.005, "before", False, id="before"),
        pytest.param(0.02, "during", True, id="during"),
        pytest.param(0.04, "after", True, id="after"),
    ],
)
def test_crashes_before_during_and_after_the_flush(draw: float, mode: str, handler_ran: bool) -> None:
    # GIVEN a handler that flushes with two BatchExecuteStatement calls, wrapped to crash at rate 0.05
    calls: list[str] = []
    crashing: CrashingHandler

    def handler(event: dict[str, object], context: object) -> dict[str, object]:
        calls.append("ran")
        crashing.hook()
        calls.append("first write")
        crashing.hook()
        calls.append("second write")
        return {"batchItemFailures": []}

    crashing = CrashingHandler(handler, 0.05, _Rng([draw]), now=lambda: 101.5)  # type: ignore[arg-type]
    # WHEN it is invoked with a draw in the `mode` third of the rate
    with pytest.raises(Exception, match=mode):
        crashing(_event(3), None)
    # THEN the crash happened where it says: before anything, between the two writes, or after both
    assert crashing.crashes == {mode: 1}
    expected = {"before": [], "during": ["ran", "first write"], "after": ["ran", "first write", "second write"]}
    assert calls == expected[mode] and handler_ran == bool(calls)
    assert crashing.lags_ms == []  # a crashed invocation measures nothing


def test_lag_is_measured_for_the_records_before_the_first_failure() -> None:
    # GIVEN a handler that reports record 2 of 4 failed, and no crash
    crashing = CrashingHandler(
        lambda e, c: {"batchItemFailures": [{"itemIdentifier": "2"}]},
        0.05,
        _Rng([0.9]),  # type: ignore[arg-type]
        now=lambda: 100.25,
    )
    # WHEN it is invoked
    crashing(_event(4), None)
    # THEN records 0 and 1 were measured, 250 ms after their arrival
    assert crashing.lags_ms == [250, 250]
    assert percentiles([5, 1, 3, 2, 4]) == {"count": 5, "p50": 3, "p99": 5, "max": 5}
    assert percentiles([]) == {"count": 0, "p50": 0, "p99": 0, "max": 0}
