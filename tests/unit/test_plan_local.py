"""The local runtime's simulation (cases worked by hand), its fit from a run's figures, and the comparison command."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from tools.cli.main import main
from tools.local.live_timing import RuntimeTiming, TimedKinesis
from tools.plan.live_fit import FitError, compare, fit_run, fit_service_time
from tools.plan.simulate_local import LocalLoad, LocalRuntimeModel, _flush_times, simulate_local


def _slow_polls(shards: int, **settings: Any) -> LocalRuntimeModel:
    """One GetRecords call: 0.1 s; one invocation: 0.2 s whatever its size; nothing else costs time."""
    return LocalRuntimeModel(shards=shards, invocation_overhead_s=0.2, per_event_s=0.0, get_records_s=0.1, **settings)


def test_a_record_put_during_the_idle_wait_waits_for_the_next_round() -> None:
    # GIVEN one shard, no batching window, and one event put at t=0 (no linger), the runtime's first poll at
    # -0.05 s: that poll (to 0.05) finds nothing, so the runtime waits 0.5 s; the next poll (0.55 to 0.65)
    # brings the record, and its invocation ends at 0.85
    model = _slow_polls(1, batching_window_s=0.0)
    # WHEN it is simulated
    result = simulate_local(model, LocalLoad(rate=20, seconds=0.05, linger_s=0.0), start_s=-0.05)
    # THEN its lag is 0.85 s, and the run is three rounds, two of them idle (the first and the last)
    assert (result.events, result.invocations, result.rounds, result.idle_rounds) == (1, 1, 3, 2)
    assert result.lag_p50_s == pytest.approx(0.85)
    assert result.events_per_s == pytest.approx(1 / 0.85)
    assert result.iterator_age_mean_s == pytest.approx(0.65)


def test_the_batching_window_holds_a_short_batch_while_polls_bring_records() -> None:
    # GIVEN one shard, batches of 3 with a batching window, and events put at 0, 0.1, 0.2 and 0.3 s: the polls
    # at 0, 0.1 and 0.2 each bring one record (held: fewer than 3), so the three go at 0.3 and end at 0.5;
    # the poll at 0.5 brings the fourth (held), the one at 0.6 brings nothing, so it goes at 0.7, ends at 0.9
    model = _slow_polls(1, batch_size=3, batching_window_s=1.0)
    # WHEN it is simulated
    result = simulate_local(model, LocalLoad(rate=10, seconds=0.4, linger_s=0.0), start_s=0.0)
    # THEN the lags are 0.5, 0.4, 0.3 and 0.6 s
    assert result.invocations == 2
    assert result.lag_mean_s == pytest.approx(0.45)
    assert (result.lag_p50_s, result.lag_p95_s) == pytest.approx((0.4, 0.6))
    # AND the newest record of each batch was 0.1 s and 0.4 s old when its invocation started
    assert result.iterator_age_mean_s == pytest.approx(0.25)
    assert result.events_per_s == pytest.approx(4 / 0.9)


def test_one_process_serves_the_shards_in_turn() -> None:
    # GIVEN two shards with one record each (put at 0 and 0.05 s) and the first poll at 0.06 s: shard 0's poll
    # ends at 0.16 and its invocation at 0.36; only then is shard 1 polled (to 0.46), its invocation ends at 0.66
    model = _slow_polls(2, batching_window_s=0.0)
    # WHEN it is simulated
    result = simulate_local(model, LocalLoad(rate=20, seconds=0.1, linger_s=0.0), start_s=0.06)
    # THEN the second record waited for the first one's invocation: lags 0.36 and 0.61 s
    assert result.lag_p50_s == pytest.approx(0.36)
    assert result.lag_p95_s == pytest.approx(0.61)
    assert result.busy_fraction == pytest.approx(0.4 / 0.66)


def test_the_producer_linger_loop_sends_after_the_linger_and_again_when_woken_during_a_send() -> None:
    # GIVEN puts at these times, a 0.2 s linger and 0.05 s PutRecords calls
    puts = [0.0, 0.05, 0.1, 0.25, 0.3, 1.0, 1.05]
    # WHEN the loop's sends are computed
    sent = _flush_times(puts, linger_s=0.2, call_s=0.05)
    # THEN the first put wakes it (send at 0.2); the put at 0.25 came during that send (ends 0.25), so the
    # next linger starts at 0.25 (send at 0.45); the put at 1.0 finds it asleep and wakes it (send at 1.2)
    assert sent == pytest.approx([0.2, 0.2, 0.2, 0.45, 0.45, 1.2, 1.2])


def test_a_poll_costs_more_the_more_records_the_stream_holds() -> None:
    # GIVEN the first case's runtime, but a GetRecords call that costs 0.1 ms per record in the stream, which
    # holds 1,000 before the load: each poll before the invocation still costs 0.1 s
    model = LocalRuntimeModel(
        shards=1,
        batching_window_s=0.0,
        invocation_overhead_s=0.2,
        per_event_s=0.0,
        get_records_s=0.0,
        per_stream_record_s=1e-4,
        stream_records_at_start=1000,
    )
    # WHEN it is simulated
    result = simulate_local(model, LocalLoad(rate=20, seconds=0.05, linger_s=0.0), start_s=-0.05)
    # THEN the lag is the first case's 0.85 s
    assert result.lag_p50_s == pytest.approx(0.85)


def test_a_model_that_cannot_run_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        simulate_local(_slow_polls(0), LocalLoad(rate=1, seconds=1))


def test_service_times_fit_a_line_and_its_spread() -> None:
    # GIVEN invocations that took exactly 80 ms + 2 ms per event
    points = [(float(events), 0.08 + 0.002 * events) for events in (10, 50, 200, 400)]
    # WHEN fitted
    overhead, per_event, sigma = fit_service_time(points)
    # THEN the line comes back, with no spread
    assert (overhead, per_event, sigma) == pytest.approx((0.08, 0.002, 0.0), abs=1e-9)
    # AND a run whose line would need a negative overhead is fitted through the origin
    assert fit_service_time([(10.0, 0.01), (20.0, 0.05)])[0] == 0.0
    with pytest.raises(FitError, match="no invocation"):
        fit_service_time([])


def _timing(**values: float) -> dict[str, float]:
    keys = ["rounds", "idle_rounds", "get_records_calls", "get_records_s", "empty_get_records_calls"]
    keys += ["empty_get_records_s", "records_read", "archive_s", "invocations", "invocation_s", "round_end_s"]
    keys += ["monotonic_s"]
    return {"idle_wait_s": 0.5, **{key: values.get(key, 0.0) for key in keys}}


def _raw_run() -> dict[str, Any]:
    """A small run's figures: 100 events in two invocations of 50, on 2 shards, over 10 s of the runtime."""
    return {
        "rate": 10.0,
        "seconds": 10.0,
        "seed": 1,
        "started_epoch": 1000.0,
        "load": {
            "events": 100,
            "reached_target": True,
            "achieved_events_per_s": 9.9,
            "producer": {"records": 100},
            "lag": {"p50_ms": 1200, "p95_ms": 2500},
        },
        "put_records": {"calls": 40, "seconds": 2.0},
        "shards": 2,
        "batch_size": 1000,
        "batching_window_s": 1.0,
        "events_counted": 100,
        "timing_before": _timing(monotonic_s=500.0),
        # 10 s: 2 invocations 1.2 s, 40 GetRecords 1.6 s (20 empty 0.6 s), archive 0.4 s, 20 rounds' ends 1.0 s,
        # 10 idle waits 5 s: 0.8 s not in any part
        "timing_after": _timing(
            rounds=20,
            idle_rounds=10,
            get_records_calls=40,
            get_records_s=1.6,
            empty_get_records_calls=20,
            empty_get_records_s=0.6,
            records_read=100,
            archive_s=0.4,
            invocations=2,
            invocation_s=1.2,
            round_end_s=1.0,
            monotonic_s=510.0,
        ),
        # end epoch, records, events, BatchLatency ms: 0.1 + 0.008/event, 0.1 s of the runtime's around the handler
        "invocations": [[1005.0, 50, 50, 500.0], [1010.0, 50, 50, 500.0]],
        "loadavg": {"before": [1.0, 1.0, 1.0], "after": [1.5, 1.0, 1.0]},
    }


def test_a_run_fits_every_time_of_the_model_from_its_own_figures() -> None:
    # GIVEN a run's figures WHEN fitted
    fit = fit_run(_raw_run())
    m = fit.model
    # THEN an invocation is its BatchLatency (equal sizes: all overhead) plus the runtime's 0.1 s around it
    assert m.invocation_overhead_s + m.per_event_s * 50 == pytest.approx(0.5 + 0.1)
    # AND a poll is the empty call's 30 ms, a record read (1.6 - 40 x 0.03 + 0.4) / 100 = 8 ms
    assert (m.get_records_s, m.per_record_read_s) == pytest.approx((0.03, 0.008))
    # AND a round's end 50 ms, the unaccounted 0.8 s over 100 records 8 ms, the idle wait the runtime's
    assert (m.round_end_s, m.per_record_invoked_s, m.idle_wait_s) == pytest.approx((0.05, 0.008, 0.5))
    assert (fit.outside_invocations_s, fit.unaccounted_s) == pytest.approx((8.8, 0.8))
    # AND the load is the target rate, one event a record, with the mean PutRecords call of 50 ms
    assert (fit.load.rate, fit.load.events_per_record, fit.load.put_latency_s) == pytest.approx((10.0, 1, 0.05))


def test_the_comparison_sets_the_run_against_its_simulation() -> None:
    # GIVEN a run's figures WHEN compared
    raw = _raw_run()
    row = compare(fit_run(raw), raw, sim_seeds=2)
    # THEN measured throughput is events over first put to last invocation's end: 100 / 10 s; the lag the probe's
    assert row["measured"]["events_per_s"] == pytest.approx(10.0)
    assert (row["measured"]["lag_p50_s"], row["measured"]["lag_p95_s"]) == pytest.approx((1.2, 2.5))
    # AND each error is (simulated - measured) / measured, and the verdict follows them
    for key, error in row["relative_error"].items():
        assert error == pytest.approx((row["simulated"][key] - row["measured"][key]) / row["measured"][key])
    assert row["within_tolerance"] == all(abs(e) <= 0.3 for e in row["relative_error"].values())


def test_get_records_calls_are_fitted_on_the_streams_size_and_the_records_returned() -> None:
    # GIVEN the runtime's sums over calls that took exactly 20 ms + 2 µs per record in the stream + 0.5 ms per record
    calls = [(n, k) for n, k in ((0, 0), (100, 50), (400, 0), (900, 10), (1500, 200), (3000, 5))]
    timing = RuntimeTiming(idle_wait_s=0.5)
    for n, k in calls:
        timing.stream_records = n
        timing.add_call(k, 0.02 + 2e-6 * n + 5e-4 * k)
    raw = _raw_run()
    before = raw["timing_before"]
    before["get_records_sums"] = dict.fromkeys(("n", "k", "nn", "kk", "nk", "ny", "ky"), 0.0)
    before["stream_records"] = 0
    calls_only = {key: value for key, value in timing.as_dict().items() if "get_records" in key or "stream" in key}
    raw["timing_after"].update(calls_only)
    # WHEN the run is fitted
    m = fit_run(raw).model
    # THEN the three terms come back (the archive's 4 ms a record added to the per-record one)
    assert m.get_records_s == pytest.approx(0.02)
    assert m.per_stream_record_s == pytest.approx(2e-6)
    assert m.per_record_read_s == pytest.approx(5e-4 + 0.004)


def test_a_run_without_the_runtimes_timing_cannot_be_fitted() -> None:
    raw = _raw_run()
    del raw["timing_after"]
    with pytest.raises(FitError, match="incomplete"):
        fit_run(raw)


def test_compare_live_compares_saved_runs_and_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN saved runs
    saved = tmp_path / "runs.json"
    saved.write_bytes(orjson.dumps({"runs": [_raw_run()]}))
    # WHEN compared again as JSON
    status = main(["compare-live", "--from-run", str(saved), "--json", "--sim-seeds", "1"])
    document = orjson.loads(capsys.readouterr().out)
    # THEN the exit status is the verdict's
    assert status == (0 if document["runs"][0]["within_tolerance"] else 1)
    assert math.isfinite(document["runs"][0]["simulated"]["lag_p50_s"])
    # AND a missing or malformed file is one line, exit 2
    for path, content in ((tmp_path / "absent.json", None), (tmp_path / "bad.json", b"{not json")):
        if content is not None:
            path.write_bytes(content)
        assert main(["compare-live", "--from-run", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "compare-live" in err


def test_the_runtimes_get_records_calls_are_timed_empty_ones_apart() -> None:
    # GIVEN a Kinesis client whose pages alternate between records and none
    class Pages:
        def __init__(self) -> None:
            self.calls = 0

        def get_records(self, **kwargs: Any) -> dict[str, Any]:
            self.calls += 1
            return {"Records": [{}] if self.calls % 2 else []}

        def describe_stream_summary(self) -> str:
            return "forwarded"

    timing = RuntimeTiming(idle_wait_s=0.5)
    kinesis = TimedKinesis(Pages(), timing)
    # WHEN it is called four times
    for _ in range(4):
        kinesis.get_records(ShardIterator="it")
    # THEN four calls are counted, two of them empty, and other calls pass through
    assert (timing.get_records_calls, timing.empty_get_records_calls) == (4, 2)
    assert timing.get_records_s >= timing.empty_get_records_s >= 0.0
    assert kinesis.describe_stream_summary() == "forwarded"
    assert timing.as_dict()["idle_wait_s"] == 0.5


def test_the_saved_live_runs_agree_within_30_percent() -> None:
    # GIVEN the six live runs the README's table reports (their raw figures, as --save wrote them)
    saved = Path(__file__).parents[2] / "tools" / "plan" / "data" / "live-runs-2026-12-02.json"
    runs = orjson.loads(saved.read_bytes())["runs"]
    # WHEN each is fitted and simulated again (one seed: the README's figures average five)
    rows = [compare(fit_run(raw), raw, sim_seeds=1) for raw in runs[1:3]]
    # THEN measured figures are the run's own, and the simulation is deterministic for a seed
    assert [row["measured"]["lag_p50_s"] for row in rows] == pytest.approx([2.62, 8.79], abs=0.01)
    assert rows == [compare(fit_run(raw), raw, sim_seeds=1) for raw in runs[1:3]]
    # AND throughput and lag agree within 30%
    assert all(abs(error) <= 0.3 for row in rows for error in row["relative_error"].values())
