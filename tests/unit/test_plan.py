"""``pipeline plan``: Kinesis and Lambda limits, the consumer model, cost in Decimal, the simulation."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from tools.cli.main import main
from tools.plan.cost import monthly_cost
from tools.plan.inputs import DEFAULT_FIGURES, Figures, PlanInputError, UnitPoint, load_figures, load_prices
from tools.plan.planner import PlanRequest, consumer_cycle, plan, shards_needed
from tools.plan.render import agreement
from tools.plan.simulate import SimulationSettings, simulate

MIB = 1024 * 1024


def _figures(**formats: dict[str, float]) -> Figures:
    point = UnitPoint(
        1000.0,
        {"product_view": 0.5, "order_event": 1.0, "user_activity": 1.0, "system_metric": 0.5},
        0.02,
        {"product_view": 0.3, "order_event": 0.5, "user_activity": 0.5, "system_metric": 0.3},
        0.0,
    )
    return Figures(
        "test",
        "2026-12-01",
        {"product_view": 0.55, "user_activity": 0.25, "order_event": 0.15, "system_metric": 0.05},
        formats
        or {
            "json": {"events_per_record": 1.0, "bytes_per_event": 326.0, "bytes_per_record": 326.0},
            "gzip-batch": {"events_per_record": 3300.0, "bytes_per_event": 51.0, "bytes_per_record": 168_300.0},
        },
        (point,),
        point,
        400.0,
        1000.0,
        5000.0,
        8000.0,
        {1: 1.0, 10: 1.0, 100: 1.6, 1000: 8.0},
        {"order_metrics": 0.15, "product_metrics": 0.01},
        99,
        4100.0,
    )


def test_a_rate_needs_exactly_n_shards_by_bytes_or_by_records() -> None:
    # GIVEN 3 MiB/s in 500 records/s: bytes decide (3 shards); 2,500 small records/s: records decide
    assert shards_needed(3 * MIB, 500, 1, 1.0)["ingest bytes (1 MiB/s)"] == 3
    assert shards_needed(3 * MIB + 1, 500, 1, 1.0)["ingest bytes (1 MiB/s)"] == 4
    assert shards_needed(100_000, 2_500, 1, 1.0)["ingest records (1,000/s)"] == 3
    # AND three readers of 2 MiB/s egress need 1.5x the ingest shards
    assert shards_needed(4 * MIB, 10, 3, 1.0)["egress (3 readers, 2 MiB/s)"] == 6


def test_json_at_2500_events_per_s_is_sized_by_records() -> None:
    figures = _figures()
    p = plan(PlanRequest(2_500, "json", utilization=1.0, readers=1), figures)
    assert p.shards_by["ingest records (1,000/s)"] == 3
    assert p.shards_by["ingest bytes (1 MiB/s)"] == 1
    assert p.shards >= 3


def test_the_densest_format_is_sized_by_bytes_and_batches_fit_six_mb() -> None:
    p = plan(PlanRequest(100_000, "gzip-batch", utilization=1.0, readers=1), _figures())
    assert p.shards_by["ingest bytes (1 MiB/s)"] == math.ceil(100_000 * 51 / MIB)
    # 168 KB records take 4/3 of that in base64: at most 6 MB of invocation payload
    assert p.batch_size * (4 * math.ceil(p.record_bytes / 3)) <= 6 * MIB
    assert p.batch_size < 10_000


def test_consumer_cycle_is_the_window_when_light_and_the_service_time_when_heavy() -> None:
    light = consumer_cycle(100, 1, 10_000, 1.0, 0.03, 1e-4)
    assert light is not None and light.cycle_s == pytest.approx(1.0)
    heavy = consumer_cycle(900, 1, 10_000, 0.0, 0.03, 1e-3)  # rho = 0.9: T = o / (1 - rho)
    assert heavy is not None and heavy.cycle_s == pytest.approx(0.3)
    assert consumer_cycle(1_000, 1, 10_000, 1.0, 0.03, 1e-3) is None  # rho = 1: never keeps up


def test_shards_are_added_until_the_consumer_keeps_up() -> None:
    # GIVEN 1 ms per event: a shard takes at most 800 events/s at 80% utilization
    p = plan(PlanRequest(8_000, "gzip-batch"), _figures())
    assert p.shards == 10
    assert p.consumer.utilization <= 0.8
    assert "consumer time (measured)" in p.shards_by


def test_hot_keys_are_reported_with_the_split_that_fixes_them() -> None:
    p = plan(PlanRequest(100_000, "gzip-batch"), _figures())
    seed_orders = [h for h in p.hot_keys if h.table == "order_metrics" and h.design == "seed style"]
    assert seed_orders and seed_orders[0].write_units_per_s == pytest.approx(15_000)
    assert "19 suffixes" in seed_orders[0].fix  # 15,000 / 800


def test_with_partials_a_hot_items_partition_takes_one_write_per_shard_invocation() -> None:
    # GIVEN 2,000 shards each invoked about once a second, all writing the hottest order bucket's partials
    busy = plan(PlanRequest(1_000_000, "gzip-batch", shards=2_000), _figures())
    (orders,) = [h for h in busy.hot_keys if h.table == "order_metrics" and h.design == "project"]
    # THEN the partition takes one 1-WU write per shard invocation, not one per event, nor S watermarks a write
    assert orders.item_writes_per_s == pytest.approx(busy.invocations_per_s)
    assert orders.write_units_per_s == pytest.approx(busy.invocations_per_s)
    assert "over 3 suffixes" in orders.fix and "3 Queries" in orders.fix  # ~2,000 WU/s over 800 each
    # AND at 100 shards (100 writes a second) the project has no hot key, the seed style still has
    calm = plan(PlanRequest(50_000, "gzip-batch", shards=100), _figures())
    assert {h.design for h in calm.hot_keys} == {"seed style"}


def test_the_day_index_partition_is_a_hot_key_once_its_writes_pass_a_partitions_limit() -> None:
    # GIVEN figures where each product view costs the day index 0.5 WU (views are 55% of the events)
    base = _figures()
    (point,) = base.project_points
    indexed = replace(point, index_write_per_type={"product_metrics/by-view-day": {"product_view": 0.5}})
    figures = replace(base, project_points=(indexed,))
    # THEN 1,000 events/s (275 WU/s on the day's partition) is no hot key
    assert not [h for h in plan(PlanRequest(1_000, "gzip-batch"), figures).hot_keys if "/" in h.table]
    # AND 10,000 events/s (2,750 WU/s) is, with the split that fixes it (2,750 / 800 -> 4)
    (hot,) = [h for h in plan(PlanRequest(10_000, "gzip-batch"), figures).hot_keys if "/" in h.table]
    assert hot.table == "product_metrics/by-view-day"
    assert hot.write_units_per_s == pytest.approx(2_750)
    assert "MetricKeySplit=4" in hot.fix and "4 Queries" in hot.fix


def test_bad_requests_are_refused_with_a_reason() -> None:
    with pytest.raises(PlanInputError, match="positive"):
        PlanRequest(0)
    with pytest.raises(PlanInputError, match="mix"):
        PlanRequest(10, mix={"product_view": 0.5})
    with pytest.raises(PlanInputError, match="no figures for format"):
        plan(PlanRequest(10, "kpl"), _figures())


def test_monthly_cost_is_decimal_and_prices_the_units_the_plan_needs() -> None:
    figures, prices = load_figures(), load_prices()
    p = plan(PlanRequest(10_000), figures)
    cost = monthly_cost(p, figures, prices)
    assert all(isinstance(v, Decimal) for v in (*cost.project.values(), *cost.seed.values()))
    assert cost.project_total == sum(cost.project.values())
    # DynamoDB is write units and read units at the on-demand prices, over a 730-hour month
    month = Decimal(730 * 3600)
    wu, ru = Decimal(repr(10_000 * p.write_units_per_event)), Decimal(repr(10_000 * p.read_units_per_event))
    expected = (wu * month / 10**6) * prices["dynamodb_write_request_units_million"] + (ru * month / 10**6) * prices[
        "dynamodb_read_request_units_million"
    ]
    assert cost.project["DynamoDB"] == pytest.approx(expected, abs=Decimal("0.02"))
    # AND with per-shard partials (the measured many-shards figures) its 17 shards write one shard's
    # units per event, within 2%, fewer than the seed style
    assert p.write_units_per_event == pytest.approx(p.write_units_per_event_one_shard, rel=0.02)
    assert p.write_units_per_event < p.seed_write_units_per_event
    assert cost.dynamodb_one_shard == pytest.approx(cost.project["DynamoDB"], rel=Decimal("0.02"))


def test_a_prices_file_overrides_only_its_keys(tmp_path: Path) -> None:
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"as_of": "2027-01-01", "prices": {"kinesis_shard_hour": "1"}}))
    prices = load_prices(overrides=override)
    assert prices["kinesis_shard_hour"] == Decimal(1)
    assert prices["lambda_requests_million"] == load_prices()["lambda_requests_million"]
    override.write_text(json.dumps({"prices": {"kinesis_shard_hour": "-1"}}))
    with pytest.raises(PlanInputError, match="at least 0"):
        load_prices(overrides=override)


@pytest.mark.parametrize(
    "rate", [pytest.param(1_000.0, id="10 shards of gzip-batch"), pytest.param(400_000.0, id="busy shards")]
)
def test_the_simulation_agrees_with_the_planner_within_20_percent(rate: float) -> None:
    figures = load_figures(DEFAULT_FIGURES)
    p = plan(PlanRequest(rate), figures)
    result = simulate(p, SimulationSettings(duration_s=120, warmup_s=20))
    check = agreement(p, result)
    assert check["within_tolerance"], check
    assert result.invocations > 0


def test_cli_prints_a_plan_and_refuses_bad_arguments_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--rate", "10000", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["shards"] >= 1 and document["monthly_usd"]["project_total"]
    for bad in (["plan", "--rate", "-5"], ["plan", "--rate", "10", "--mix", "product_view=2"], ["plan"]):
        with pytest.raises(SystemExit) as exit_info:
            main(bad)
        assert exit_info.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["plan", "--rate", "10", "--prices", "/nonexistent.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read" in err[0]


def test_a_drained_run_with_one_invocation_at_a_time_queues_behind_the_other_shards() -> None:
    # GIVEN 4 shards of json records at 200 events/s, 4.47 ms per event, served one invocation at a time
    # (the local live runtime) for a 60 s load run and its drain
    request = PlanRequest(200, "json", shards=4, batch_size=1_000, per_event_us=4_470, invocation_overhead_s=0.225)
    p = plan(request, load_figures())
    alone = simulate(p, SimulationSettings(duration_s=60, warmup_s=0, drain=True))
    shared = simulate(
        p, SimulationSettings(duration_s=60, warmup_s=0, drain=True, concurrency_limit=1, throttle_backoff_s=0.05)
    )
    # THEN each shard alone keeps up (the planner's lag), sharing one runner makes the queue and the lag grow
    assert alone.events_per_s == pytest.approx(200, rel=0.05)
    assert alone.median_lag_s < 2 * p.consumer.mean_lag_s
    assert shared.max_concurrency == 1 and shared.throttled_invocations > 0
    assert shared.events_per_s < alone.events_per_s
    assert shared.median_lag_s > 3 * alone.median_lag_s
