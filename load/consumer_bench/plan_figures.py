"""The planner's measured figures: one dated, versioned JSON file under ``tools/plan/data/``.

Regenerate (the figures depend on the code, the workload and, for times, the machine)::

    pipeline bench consumer --json > bench.json            # times per event on the emulator
    python -m load.consumer_bench.plan_figures --consumer-json bench.json \\
        --out tools/plan/data/consumer-figures-v1-$(date -u +%F).json

then point :data:`tools.plan.inputs.DEFAULT_FIGURES` at the new file. What goes in:

- per record format: events per record and bytes per event of the reference workload (the producer's
  own encoder, one shard);
- capacity units per event **by event type** (so ``--mix`` can reweigh them) for the project's consumer
  at several invocation sizes (json records in batches of 1,000 and 10,000, and the densest format's
  largest invocations: 6 MB of payload), and for the seed style (:mod:`load.consumer_bench.unit_runs`);
- the many-shards case: write units per event when 1, 10, 100 and 1,000 shards write the same items;
- the hottest item's share of events per table, and the size of one watermark attribute;
- consumer CPU and wall time per event, measured on the emulator by ``pipeline bench consumer``
  (``--consumer-json``), for the project and the seed style.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

import orjson

from load.consumer_bench.unit_runs import UnitFigures, hot_shards, invocations, project_units, records_of, seed_units
from load.consumer_bench.units import python_item_bytes
from pipeline.codecs import RecordFormat, encode_records
from pipeline.events import Event, EventType, OrderData, ProductViewData, SystemMetricData
from pipeline.metrics.plan import watermark_attribute
from pipeline.stream import encode_position
from tools.generate import generate_events

__all__ = ["TABLE_TYPES", "figures_document", "main"]

VERSION: Final = 1
TABLE_TYPES: Final = {
    "product_metrics": "product_view",
    "user_activities": "user_activity",
    "user_sessions": "user_activity",
    "store": "user_activity",
    "order_metrics": "order_event",
    "order_claims": "order_event",
    "system_metrics": "system_metric",
}
"""Which event type's events write (or read) each table; ``event_dedup`` is every event's. A table's
index (``<table>/<index>``, :data:`load.consumer_bench.units.INDEXES`) is its table's type's."""
_SHARD: Final = "shardId-000000000000"


def _by_type(figures: UnitFigures, counts: Counter[str]) -> dict[str, Any]:
    """Units per event of each type, and the dedup window's per event of any type."""
    units = figures.units
    out: dict[str, Any] = {"events_per_invocation": round(figures.events / figures.invocations, 1)}
    indexes: dict[str, dict[str, float]] = {}
    for kind, source in (("write_units", units.write_units), ("read_units", units.read_units)):
        per_type: dict[str, float] = {}
        for table, value in source.items():
            if table == "event_dedup":
                continue
            owner = TABLE_TYPES.get(table.split("/")[0])
            if owner is None:  # a table no type owns would silently drop out of the planner's units
                raise ValueError(f"no event type owns table {table!r}: add it to TABLE_TYPES")
            per_type[owner] = per_type.get(owner, 0.0) + float(value) / counts[owner]
            if kind == "write_units" and "/" in table:  # the planner's hot index partitions need them apart
                indexes[table] = {owner: round(float(value) / counts[owner], 5)}
        out[f"{kind}_per_event_of_type"] = {t: round(v, 5) for t, v in sorted(per_type.items())}
        out[f"{kind}_per_event_any"] = round(float(source.get("event_dedup", 0)) / figures.events, 5)
        out[f"{kind}_per_event"] = round(float(sum(source.values())) / figures.events, 5)
    out["index_write_units_per_event_of_type"] = indexes
    out["by_table"] = figures.per_event()
    return out


def _formats(events: Sequence[Event]) -> dict[str, Any]:
    out = {}
    for fmt in RecordFormat:
        records = encode_records(events, fmt)
        size = sum(len(r.data) for r in records)
        out[fmt.value] = {
            "events_per_record": round(len(events) / len(records), 1),
            "bytes_per_event": round(size / len(events), 1),
            "bytes_per_record": round(size / len(records), 1),
        }
    return out


def _hottest(events: Sequence[Event]) -> dict[str, float]:
    """The largest share of all events that one item of each table receives (per day for day items)."""
    n = len(events)
    products = Counter(e.data.product_id for e in events if isinstance(e.data, ProductViewData))
    series = Counter(e.data.name for e in events if isinstance(e.data, SystemMetricData))
    users = Counter(e.user_id for e in events if e.event_type is EventType.USER_ACTIVITY)
    orders = sum(1 for e in events if isinstance(e.data, OrderData))
    return {
        "order_metrics": round(orders / n, 5),
        "product_metrics": round(max(products.values(), default=0) / n, 5),
        "system_metrics": round(max(series.values(), default=0) / n, 5),
        "user_sessions": round(max(users.values(), default=0) / n, 5),
    }


def figures_document(
    events: int, seed: int, consumer: dict[str, Any] | None, note: Callable[[str], None]
) -> dict[str, Any]:
    """Everything the module docstring lists; ``consumer`` is a ``pipeline bench consumer --json`` object."""
    note(f"generating {events:,} reference events (seed {seed})")
    workload = list(generate_events(events, seed))
    counts = Counter(e.event_type.value for e in workload)
    first = workload[:10_000]
    first_counts = Counter(e.event_type.value for e in first)
    points = []
    for fmt, batch in ((RecordFormat.JSON, 1_000), (RecordFormat.JSON, 10_000)):
        note(f"units: {fmt.value} records, batches of {batch:,}")
        runs = invocations(records_of(first, fmt, _SHARD), batch)
        points.append(
            {
                "format": fmt.value,
                "batch_size": batch,
                **_by_type(project_units(f"{fmt.value} {batch}", runs, len(first)), first_counts),
            }
        )
    note(f"units: gzip-batch, invocations of 6 MB, {len(workload):,} events")
    runs = invocations(records_of(workload, RecordFormat.GZIP_BATCH, _SHARD), 10_000)
    points.append(
        {
            "format": "gzip-batch",
            "batch_size": 10_000,
            **_by_type(project_units("gzip-batch 6 MB", runs, len(workload)), counts),
        }
    )
    note("units: the seed-style consumer")
    seed_style = _by_type(seed_units("seed style", first), first_counts)
    shards: dict[str, Any] = {}
    for number in (1, 10, 100, 1_000):
        note(f"units: {number:,} shards writing the same items (batches of 100 events)")
        sample = workload[: max(2 * number * 100, 20_000)]
        figures = hot_shards(sample, number, 100)
        shards[str(number)] = {
            "write_units_per_event": round(figures.units.total_write_units / figures.events, 4),
            "item_writes_per_event": round(sum(figures.units.writes.values()) / figures.events, 4),
            "by_table": figures.per_event()["write_units_per_event_by_table"],
        }
    # A real shard id and a 56-digit sequence number (Kinesis's length), as the writer stores it.
    position = encode_position("49" + "6" * 54, None, 0)
    watermark = python_item_bytes({watermark_attribute("shardId-000000000999"): position})
    timing = _timing(consumer)
    return {
        "version": VERSION,
        "measured_on": datetime.now(UTC).date().isoformat(),
        "regenerate": "see load/consumer_bench/plan_figures.py",
        "workload": {
            "generator": "tools.generate.generate_events",
            "events": events,
            "seed": seed,
            "mix": {t: round(c / len(workload), 5) for t, c in sorted(counts.items())},
        },
        "formats": _formats(first),
        "project": {"points": points, **timing.get("project", {})},
        "seed_style": {**seed_style, **timing.get("seed_style", {})},
        "many_shards": {
            "batch_events": 100,
            "design": "per-shard partial items (pipeline/metrics/partials.py)",
            "shards": shards,
        },
        "hottest_item_share": _hottest(workload),
        "watermark_bytes": watermark,
        "flink_events_per_s_per_kpu": 4_100,
        "flink_source": "pipeline bench analytics, README (the slower of two runs, parallelism 1 on a 2-core machine)",
    }


def _timing(consumer: dict[str, Any] | None) -> dict[str, Any]:
    if consumer is None:
        return {}
    out = {}
    for key in ("project", "seed_style"):
        run = consumer[key]
        out[key] = {
            "cpu_us_per_event": round(run["cpu_us_per_event"], 1),
            "wall_us_per_event": round(1e6 / run["events_per_s"], 1),
            "timing_source": f"pipeline bench consumer (batches of {consumer['batch_size']:,} json records, emulator)",
        }
    return out


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Write the figures file; one line and exit 2 for a bad input file, 130 when interrupted (SIGINT or SIGTERM)."""
    parser = argparse.ArgumentParser(
        prog="python -m load.consumer_bench.plan_figures", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=200_000, help="reference events (default 200000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--consumer-json", type=Path, help="a 'pipeline bench consumer --json' output: times per event")
    parser.add_argument("--out", type=Path, required=True, help="the figures file to write")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        consumer = orjson.loads(args.consumer_json.read_bytes()) if args.consumer_json else None
        document = figures_document(
            args.events, args.seed, consumer, lambda m: print(f"plan figures: {m}", file=sys.stderr)
        )
        args.out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    except KeyboardInterrupt:
        print("plan figures: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"plan figures: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2
    except (orjson.JSONDecodeError, KeyError, ValueError) as exc:
        print(
            f"plan figures: --consumer-json is not a 'pipeline bench consumer --json' output: {exc!r}", file=sys.stderr
        )
        return 2
    print(f"plan figures: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
