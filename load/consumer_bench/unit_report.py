"""The capacity-units part of ``pipeline bench consumer``: measured in memory, printed as a section.

:func:`measure_units` meters, on the same reference events, the project's consumer at the run's batch
size and at 10,000 records (json, one event per record; Lambda's 6 MB payload limit cuts the
invocations), the densest format's largest invocations (gzip-batch, up to 6 MB of payload), and the
seed-style consumer (see :mod:`load.consumer_bench.unit_runs` for how units are metered); with
``shards``, the many-shards case too: the same events dealt to S shards in batches of 100 events, all
writing the same hot items (:func:`~load.consumer_bench.unit_runs.hot_shards`), and the ratio of the
most shards' write units per event to one shard's (issue 14's target: at most 1.2x at 1,000 shards).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from load.consumer_bench.unit_runs import hot_shards, invocations, project_units, records_of, seed_units
from pipeline.codecs import RecordFormat
from pipeline.events import Event

__all__ = ["HOT_BATCH_EVENTS", "SHARDS_TARGET", "measure_units", "shards_label", "shards_ratio", "units_section"]

_SHARD = "shardId-000000000000"
HOT_BATCH_EVENTS = 100
"""Events per batch in the many-shards case (each shard's invocations)."""
SHARDS_TARGET = 1.2
"""Write units per event at many shards over one shard's, at most."""


def shards_label(shards: int) -> str:
    return f"{shards:,} shards, same items"


def measure_units(
    events: Sequence[Event], batch_size: int, note: Callable[[str], None], shards: Sequence[int] = ()
) -> dict[str, Any]:
    """Units per event (``UnitFigures.per_event``) for each case, keyed by a short label.

    Raises :class:`ValueError` when ``events`` are too few for a shard count (``(S + 1) * 100`` at least).
    """
    short = [n for n in shards if len(events) < (n + 1) * HOT_BATCH_EVENTS]
    if short:
        raise ValueError(f"{max(short):,} shards need at least {(max(short) + 1) * HOT_BATCH_EVENTS:,} units events")
    out: dict[str, Any] = {}
    json_records = records_of(events, RecordFormat.JSON, _SHARD)
    for size in sorted({batch_size, 10_000}):
        note(f"capacity units: json records, batches of {size:,} (metered in memory)")
        out[f"json, batch {size:,}"] = project_units(
            f"json {size}", invocations(json_records, size), len(events)
        ).per_event()
    note("capacity units: gzip-batch, invocations of up to 6 MB")
    dense = invocations(records_of(events, RecordFormat.GZIP_BATCH, _SHARD), 10_000)
    out["gzip-batch, 6 MB"] = project_units("gzip-batch 6 MB", dense, len(events)).per_event()
    note("capacity units: the seed-style consumer")
    out["seed style"] = seed_units("seed style", events).per_event()
    for number in sorted(set(shards)):
        # The warm-up pass deals one batch to every shard; then at least as many batches are counted.
        sample = events[: max(2 * number * HOT_BATCH_EVENTS, 20_000)]
        note(f"capacity units: {number:,} shards writing the same items ({len(sample):,} events, batches of 100)")
        out[shards_label(number)] = hot_shards(sample, number, HOT_BATCH_EVENTS).per_event()
    return out


def units_section(units: dict[str, Any], wire_item_writes: float | None) -> list[str]:
    """Lines for the human report; ``wire_item_writes`` is the emulator run's item writes per event."""
    if not units:
        return []
    lines = [
        "",
        "DynamoDB capacity units per event (billing rules: 1 KB write units of the larger image, 4 KB read units;",
        "metered in memory by the same write engine, same events):",
        f"{'case':22}{'events/inv':>12}{'writes/ev':>11}{'WU/ev':>8}{'RU/ev':>8}  largest tables (WU/ev)",
    ]
    for label, u in units.items():
        top = ", ".join(f"{t} {v:.3f}" for t, v in list(u["write_units_per_event_by_table"].items())[:3])
        lines.append(
            f"{label:22}{u['events_per_invocation']:>12,.0f}{u['item_writes_per_event']:>11.4f}"
            f"{u['write_units_per_event']:>8.3f}{u['read_units_per_event']:>8.3f}  {top}"
        )
    if wire_item_writes is not None:
        lines.append(f"(on the wire, the emulator run made {wire_item_writes:.4f} item writes per event)")
    ratio = shards_ratio(units)
    if ratio is not None:
        most, value = ratio
        verdict = "PASS" if value <= SHARDS_TARGET else "FAIL"
        lines.append(
            f"many shards: {most:,} shards write {value:.3f}x one shard's units per event "
            f"(per-shard partial items; target <= {SHARDS_TARGET}x): {verdict}"
        )
    return lines


def shards_ratio(units: dict[str, Any]) -> tuple[int, float] | None:
    """``(most shards, their write units per event / one shard's)``, if both cases were measured."""
    measured = {
        int(label.split(" ")[0].replace(",", "")): u["write_units_per_event"]
        for label, u in units.items()
        if label.endswith(" shards, same items")
    }
    if 1 not in measured or len(measured) < 2 or not measured[1]:
        return None
    most = max(measured)
    return most, measured[most] / measured[1]
