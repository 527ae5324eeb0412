"""The capacity-units part of ``pipeline bench consumer``: measured in memory, printed as a section.

:func:`measure_units` meters, on the same reference events, the project's consumer at the run's batch
size and at 10,000 records (json, one event per record; Lambda's 6 MB payload limit cuts the
invocations), the densest format's largest invocations (gzip-batch, up to 6 MB of payload), and the
seed-style consumer (see :mod:`load.consumer_bench.unit_runs` for how units are metered).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from load.consumer_bench.unit_runs import invocations, project_units, records_of, seed_units
from pipeline.codecs import RecordFormat
from pipeline.events import Event

__all__ = ["measure_units", "units_section"]

_SHARD = "shardId-000000000000"


def measure_units(events: Sequence[Event], batch_size: int, note: Callable[[str], None]) -> dict[str, Any]:
    """Units per event (``UnitFigures.per_event``) for each case, keyed by a short label."""
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
    return lines
