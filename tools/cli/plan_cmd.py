"""``pipeline plan``: shards, event source settings, capacity units, hot keys and monthly cost for a rate.

Everything comes from two dated files in the repository (``tools/plan/data/``): the figures the
benchmarks measured and the prices with their sources. ``--simulate`` checks the planner's iterator
age and throughput with a discrete-event simulation at 10, 100 and 1,000 shards' worth of the same
per-shard load. Bad arguments or files: one line on stderr, exit 2. A simulation that disagrees with
the planner by more than 20%: exit 1.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from tools.cli.args import positive_int, positive_number

__all__ = ["configure", "parse_mix", "run"]

_FORMATS = ("json", "gzip", "gzip-batch", "kpl", "kpl-gzip")
_TYPES = ("order_event", "product_view", "system_metric", "user_activity")


def parse_mix(text: str) -> dict[str, float]:
    """``product_view=0.55,user_activity=0.25,...``: shares of event types summing to 1."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in _TYPES:
            raise argparse.ArgumentTypeError(f"{part!r}: expected TYPE=SHARE with TYPE one of {', '.join(_TYPES)}")
        try:
            share = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: {value!r} is not a number") from None
        if not 0 <= share <= 1:
            raise argparse.ArgumentTypeError(f"{part!r}: a share is between 0 and 1")
        mix[name] = share
    if not math.isclose(sum(mix.values()), 1.0, abs_tol=1e-3):
        raise argparse.ArgumentTypeError(f"the shares add up to {sum(mix.values()):g}, not 1")
    return mix


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--rate", type=positive_number, required=True, help="steady events per second (e.g. 100000)")
    parser.add_argument(
        "--event-bytes",
        type=positive_number,
        help="JSON bytes of an average event (default: the reference workload's, ~304)",
    )
    parser.add_argument(
        "--mix",
        type=parse_mix,
        help="event type shares, e.g. product_view=0.55,user_activity=0.25,order_event=0.15,system_metric=0.05 "
        "(default: the reference workload's)",
    )
    parser.add_argument(
        "--format", choices=_FORMATS, default="gzip-batch", help="record format the producers use (default gzip-batch)"
    )
    parser.add_argument(
        "--batching-window", type=float, default=1.0, help="MaximumBatchingWindowInSeconds (0-300, default 1)"
    )
    parser.add_argument(
        "--utilization",
        type=float,
        default=0.8,
        help="plan every shard and partition limit at this fraction (default 0.8)",
    )
    parser.add_argument(
        "--prices",
        type=Path,
        help="a prices file (same layout as tools/plan/data/prices-*.json); its keys replace the defaults",
    )
    parser.add_argument(
        "--figures", type=Path, help="a figures file (default: tools/plan/data/consumer-figures-v1-2026-12-02.json)"
    )
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="also run the discrete-event simulation at 10, 100 and 1,000 shards and compare",
    )
    parser.add_argument(
        "--shards", type=positive_int, help="plan (and simulate) this many shards instead of sizing the stream"
    )
    parser.add_argument("--batch-size", type=positive_int, help="cap the event source mapping's BatchSize (records)")
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=1000,
        help="Lambda concurrency available to the consumer in the simulation (default 1000, the account default); "
        "the local live runtime has its own model: pipeline compare-live",
    )
    parser.add_argument(
        "--throttle-backoff",
        type=positive_number,
        default=1.0,
        help="seconds before a throttled invocation is tried again, in the simulation (default 1)",
    )
    parser.add_argument(
        "--per-event-us", type=positive_number, help="the consumer's wall time per event in µs (default: the figures')"
    )
    parser.add_argument(
        "--invocation-overhead-ms",
        type=positive_number,
        default=30.0,
        help="fixed time per invocation in ms (default 30)",
    )
    parser.add_argument(
        "--seconds",
        type=positive_number,
        help="simulate a load run: arrivals for this long, then until every record is done (as 'pipeline load "
        "synthetic --seconds'); default: 300 s of steady state after 60 s of warm-up",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    parser.epilog = (
        "Figures are measured by 'pipeline bench consumer' and load/consumer_bench/plan_figures.py (see "
        "that module to regenerate them); prices are us-east-1 list prices with their sources and date. "
        "The monthly table puts the seed-style design (one JSON record and one or more blocking DynamoDB "
        "calls per event) beside the project's."
    )


def run(args: argparse.Namespace) -> int:
    from tools.plan.cost import monthly_cost
    from tools.plan.inputs import DEFAULT_FIGURES, PlanInputError, load_figures, load_prices
    from tools.plan.planner import PlanRequest, plan
    from tools.plan.render import agreement, plan_json, render_plan, render_simulation
    from tools.plan.simulate import SimulationSettings, simulate

    try:
        figures = load_figures(args.figures or DEFAULT_FIGURES)
        prices = load_prices(overrides=args.prices)
        request = PlanRequest(
            args.rate,
            args.format,
            args.event_bytes,
            args.mix,
            args.batching_window,
            args.utilization,
            invocation_overhead_s=args.invocation_overhead_ms / 1000,
            shards=args.shards,
            batch_size=args.batch_size,
            per_event_us=args.per_event_us,
        )
        result = plan(request, figures)
        cost = monthly_cost(result, figures, prices)
        rows: list[dict[str, Any]] = []
        settings = SimulationSettings(concurrency_limit=args.concurrency, throttle_backoff_s=args.throttle_backoff)
        if args.seconds:
            settings = replace(settings, duration_s=args.seconds, warmup_s=0.0, drain=True)
        if args.simulate:
            targets = [result.shards] if args.shards else [10, 100, 1_000]
            for shards in targets:
                scaled = plan(replace(request, rate=args.rate * shards / result.shards, shards=args.shards), figures)
                print(f"pipeline plan: simulating {scaled.shards:,} shards", file=sys.stderr)
                rows.append(agreement(scaled, simulate(scaled, settings)))
    except PlanInputError as exc:
        print(f"pipeline plan: {exc}", file=sys.stderr)
        return 2
    if args.json:
        document = plan_json(result, cost, figures, prices)
        if rows:
            document["simulation"] = rows
        sys.stdout.write(orjson.dumps(document).decode() + "\n")
    else:
        print(render_plan(result, cost, figures, prices))
        if rows:
            print(render_simulation(rows))
    return 0 if all(r["within_tolerance"] for r in rows) else 1
