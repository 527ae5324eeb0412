"""A plan as text for people or as one JSON object; the simulation's agreement beside the planner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from tools.plan.cost import ASSUMPTIONS, SERVICES, CostTable
from tools.plan.inputs import Figures, Prices
from tools.plan.planner import Plan
from tools.plan.simulate import SimulationResult

__all__ = ["Agreement", "agreement", "plan_json", "render_plan", "render_simulation"]

Agreement = dict[str, Any]


def agreement(plan: Plan, result: SimulationResult, tolerance: float = 0.2) -> Agreement:
    """The planner's iterator age and throughput against the simulation's, with relative differences."""
    age = abs(result.iterator_age_s - plan.consumer.iterator_age_s) / plan.consumer.iterator_age_s
    throughput = abs(result.events_per_s - plan.request.rate) / plan.request.rate
    return {
        "shards": plan.shards,
        "rate": plan.request.rate,
        "planner_iterator_age_s": round(plan.consumer.iterator_age_s, 3),
        "simulated_iterator_age_s": round(result.iterator_age_s, 3),
        "iterator_age_difference": round(age, 3),
        "simulated_events_per_s": round(result.events_per_s, 1),
        "throughput_difference": round(throughput, 3),
        "planner_mean_lag_s": round(plan.consumer.mean_lag_s, 3),
        "simulated_mean_lag_s": round(result.mean_lag_s, 3),
        "simulation": asdict(result),
        "within_tolerance": age <= tolerance and throughput <= tolerance,
        "tolerance": tolerance,
    }


def _usd(value: Decimal) -> str:
    return f"${value:,.2f}"


def plan_json(plan: Plan, cost: CostTable, figures: Figures, prices: Prices) -> dict[str, Any]:
    c = plan.consumer
    return {
        "rate": plan.request.rate,
        "format": plan.request.record_format,
        "mix": plan.mix,
        "events_per_record": round(plan.events_per_record, 1),
        "bytes_per_event": round(plan.bytes_per_event, 1),
        "records_per_s": round(plan.records_per_s, 2),
        "mib_per_s": round(plan.bytes_per_s / 2**20, 3),
        "shards": plan.shards,
        "shards_by_limit": plan.shards_by,
        "kinesis_mode": cost.kinesis_mode,
        "event_source_mapping": {
            "BatchSize": plan.batch_size,
            "MaximumBatchingWindowInSeconds": plan.request.batching_window_s,
            "ParallelizationFactor": 1,
            "concurrency": plan.shards,
        },
        "consumer": {**asdict(c), "invocations_per_s": round(plan.invocations_per_s, 2)},
        "write_units_per_event": round(plan.write_units_per_event, 4),
        "write_units_per_event_one_shard": round(plan.write_units_per_event_one_shard, 4),
        "read_units_per_event": round(plan.read_units_per_event, 4),
        "write_units_per_s": round(plan.write_units_per_s, 1),
        "read_units_per_s": round(plan.read_units_per_s, 1),
        "hot_keys": [asdict(h) for h in plan.hot_keys],
        "seed_style": {
            "shards": plan.seed_shards,
            "kinesis_mode": cost.seed_kinesis_mode,
            "write_units_per_event": round(plan.seed_write_units_per_event, 4),
            "read_units_per_event": round(plan.seed_read_units_per_event, 4),
            "iterator_age_s": round(plan.seed_consumer.iterator_age_s, 3),
        },
        "monthly_usd": {
            "project": {k: str(v) for k, v in cost.project.items()},
            "seed_style": {k: str(v) for k, v in cost.seed.items()},
            "project_total": str(cost.project_total),
            "seed_style_total": str(cost.seed_total),
            "project_dynamodb_at_one_shard_units": str(cost.dynamodb_one_shard),
        },
        "assumptions": list(ASSUMPTIONS),
        "figures": {"file": figures.source, "measured_on": figures.measured_on},
        "prices": {"file": prices.source, "as_of": prices.as_of},
    }


def render_plan(plan: Plan, cost: CostTable, figures: Figures, prices: Prices) -> str:
    c, r = plan.consumer, plan.request
    limits = ", ".join(f"{k}: {v:,}" for k, v in plan.shards_by.items())
    lines = [
        f"pipeline plan: {r.rate:,.0f} events/s as {r.record_format} "
        f"({plan.events_per_record:,.0f} events/record, {plan.bytes_per_event:,.0f} B/event, "
        f"{plan.records_per_s:,.2f} records/s, {plan.bytes_per_s / 2**20:,.2f} MiB/s)",
        "",
        f"Kinesis      {plan.shards:,} shard{'' if plan.shards == 1 else 's'} ({limits}); "
        f"{cost.kinesis_mode} is cheaper at this load",
        f"ESM          BatchSize {plan.batch_size:,}, MaximumBatchingWindowInSeconds {r.batching_window_s:g}, "
        f"ParallelizationFactor 1 (the watermarks need one batch per shard at a time), concurrency {plan.shards:,}",
        f"Consumer     {c.events_per_invocation:,.0f} events/invocation, {c.duration_s:.2f} s each, "
        f"{plan.invocations_per_s:,.1f} invocations/s, shard busy {c.utilization:.0%}",
        f"Iterator age {c.iterator_age_s:.2f} s expected (oldest record at invocation start); "
        f"mean lag to the tables {c.mean_lag_s:.2f} s",
        f"DynamoDB     {plan.write_units_per_event:.3f} WU/event "
        f"({plan.write_units_per_event_one_shard:.3f} at one shard; "
        f"per-shard partials, one watermark each) = {plan.write_units_per_s:,.0f} WU/s; "
        f"{plan.read_units_per_event:.3f} RU/event = {plan.read_units_per_s:,.0f} RU/s",
        f"Seed style   {plan.seed_shards:,} shards, {plan.seed_write_units_per_event:.3f} WU/event, "
        f"{plan.seed_read_units_per_event:.3f} RU/event, iterator age {plan.seed_consumer.iterator_age_s:.2f} s",
    ]
    if plan.hot_keys:
        lines.append("")
        lines.append(f"Hot keys (one partition key above {r.utilization:.0%} of a partition's 1,000 WU/s):")
        width = max(len(h.table) for h in plan.hot_keys)
        for h in plan.hot_keys:
            lines.append(f"  {h.table:{width}} {h.design:10} {h.write_units_per_s:>9,.0f} WU/s: {h.fix}")
    lines += ["", f"{'monthly (USD)':16}{'project':>14}{'seed style':>14}"]
    for service in SERVICES:
        lines.append(f"{service:16}{_usd(cost.project[service]):>14}{_usd(cost.seed[service]):>14}")
    ratio = cost.seed_total / cost.project_total if cost.project_total else Decimal(0)
    lines.append(f"{'total':16}{_usd(cost.project_total):>14}{_usd(cost.seed_total):>14}   seed/project {ratio:.2f}x")
    if abs(cost.dynamodb_one_shard - cost.project["DynamoDB"]) > cost.project["DynamoDB"] / 100:  # noise below 1%
        lines.append(
            f"(DynamoDB at exactly one shard's write units per event: "
            f"{_usd(cost.dynamodb_one_shard)}; total {_usd(cost.project_total_one_shard)})"
        )
    lines += [
        "",
        f"figures: {figures.source} (measured {figures.measured_on}); prices: {prices.source} (as of {prices.as_of})",
        f"assumed: {'; '.join(ASSUMPTIONS)}",
    ]
    return "\n".join(lines)


def render_simulation(rows: Sequence[Agreement]) -> str:
    lines = [
        "",
        "Simulation (discrete-event, consumer side) against the planner:",
        f"{'shards':>8}{'events/s':>12}{'age plan':>10}{'age sim':>10}{'diff':>7}{'events/s sim':>14}{'diff':>7}  ok",
    ]
    for a in rows:
        lines.append(
            f"{a['shards']:>8,}{a['rate']:>12,.0f}{a['planner_iterator_age_s']:>10.2f}{a['simulated_iterator_age_s']:>10.2f}"
            f"{a['iterator_age_difference']:>7.0%}{a['simulated_events_per_s']:>14,.0f}{a['throughput_difference']:>7.0%}"
            f"  {'PASS' if a['within_tolerance'] else 'FAIL'}"
        )
    return "\n".join(lines)
