"""Capacity units per event: the project's consumer and the seed style, by DynamoDB's billing rules.

Both run in memory on metered stores (:mod:`load.consumer_bench.units`): the project's
:class:`~pipeline.consumer.processor.BatchProcessor` with every plugin, the batch context, the dedup
window and the same write engine as ``DynamoMetricWriter`` (same plans, conditions, watermarks and
cache, so the same item writes); the seed style with its own calls on a metered client. Item sizes
are the real items' (keys, counters, watermarks), so the units are what DynamoDB would bill for the
same batches. Invocations are cut as Lambda would: at most ``batch_size`` records and at most
``payload_bytes`` of invocation JSON (6 MB for a synchronous invocation).

:func:`hot_shards` is the many-shards case: the same events spread over ``shards`` shards, each shard
delivering its own batches, all writing the same hot items (a day's order counters, a popular
product's day). With per-shard partial items (:mod:`pipeline.metrics.partials`) each shard updates
its own partial, holding its one watermark, so an update is billed on a partial's size whatever the
number of shards (before partials, every hot item carried one 99-byte watermark per shard).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import orjson

from load.consumer_bench.units import MeteredDedupStore, MeteredSeedClient, MeteredStore, UnitTally
from load.seed_consumer import SeedStyleConsumer
from pipeline.codecs import RecordFormat, encode_records
from pipeline.consumer.context import ContextLoaderFromStore
from pipeline.consumer.dedup import EventDeduplicator
from pipeline.consumer.processor import BatchProcessor
from pipeline.events import Event
from pipeline.exceptions import PipelineError
from pipeline.metrics.tables import TABLES, Resources
from pipeline.plugins import REGISTRY
from pipeline.stream import StreamRecord, lambda_event
from tools.memory import MemoryBadRowSink, MemoryMetricWriter

__all__ = [
    "LAMBDA_PAYLOAD_BYTES",
    "UnitFigures",
    "hot_shards",
    "invocations",
    "project_units",
    "records_of",
    "seed_units",
]

LAMBDA_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
"""A synchronous invocation's request payload limit (the event source mapping's batches must fit)."""
_ARN: Final = "arn:aws:kinesis:us-east-1:000000000000:stream/bench-units"
_ARRIVAL: Final = datetime.fromtimestamp(1_795_500_000.0, tz=UTC)
_WINDOW: Final = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class UnitFigures:
    """One metered run: events, records, invocations and the units by table."""

    label: str
    events: int
    records: int
    invocations: int
    units: UnitTally

    def per_event(self) -> dict[str, object]:
        n = self.events
        return {
            "label": self.label,
            "events": n,
            "records": self.records,
            "invocations": self.invocations,
            "events_per_invocation": round(n / max(self.invocations, 1), 1),
            "item_writes_per_event": round(sum(self.units.writes.values()) / n, 4),
            "write_units_per_event": round(self.units.total_write_units / n, 4),
            "read_units_per_event": round(float(self.units.total_read_units) / n, 4),
            "write_units_per_event_by_table": {
                t: round(u / n, 4) for t, u in sorted(self.units.write_units.items(), key=lambda kv: -kv[1])
            },
            "read_units_per_event_by_table": {
                t: round(float(u) / n, 4) for t, u in sorted(self.units.read_units.items(), key=lambda kv: -kv[1])
            },
            "failed_conditional_writes": sum(self.units.failed.values()),
        }


def records_of(events: Sequence[Event], record_format: RecordFormat, shard: str) -> list[StreamRecord]:
    """``events`` packed as ``record_format`` records of one shard, with increasing sequence numbers."""
    return [
        StreamRecord(shard, _sequence_number(i), r.data, _ARRIVAL + timedelta(milliseconds=i), r.partition_key)
        for i, r in enumerate(encode_records(events, record_format))
    ]


def _sequence_number(i: int) -> str:
    """The ``i``-th sequence number of a shard, 56 digits without leading zeros as Kinesis's are, so
    watermark attributes have their real size (about 99 bytes with the name)."""
    return f"49{i:054d}"


def invocations(
    records: Sequence[StreamRecord], batch_size: int, payload_bytes: int = LAMBDA_PAYLOAD_BYTES
) -> list[list[StreamRecord]]:
    """Consecutive batches of at most ``batch_size`` records and ``payload_bytes`` of invocation JSON."""
    if batch_size < 1 or payload_bytes < 1:
        raise ValueError(f"batch size and payload must be at least 1; got {batch_size}, {payload_bytes}")
    envelope = len(orjson.dumps(lambda_event([], _ARN)))
    batches: list[list[StreamRecord]] = []
    current: list[StreamRecord] = []
    size = envelope
    for record in records:
        one = len(orjson.dumps(lambda_event([record], _ARN))) - envelope + 1
        if one + envelope > payload_bytes:
            raise ValueError(f"one record needs {one + envelope} bytes of payload, above {payload_bytes}")
        if current and (len(current) == batch_size or size + one > payload_bytes):
            batches.append(current)
            current, size = [], envelope
        current.append(record)
        size += one
    if current:
        batches.append(current)
    return batches


def _metered_processor() -> tuple[BatchProcessor, MeteredStore, MeteredDedupStore]:
    """The production processor over metered in-memory stores (one container), and the two stores."""
    store, dedup_store = MeteredStore(), MeteredDedupStore()
    writer = MemoryMetricWriter(store)
    processor = BatchProcessor(
        REGISTRY,
        writer,
        ContextLoaderFromStore(writer, REGISTRY),
        MemoryBadRowSink(),
        EventDeduplicator(dedup_store, _WINDOW),
    )
    return processor, store, dedup_store


def project_units(label: str, batches: Sequence[Sequence[StreamRecord]], events: int) -> UnitFigures:
    """The project's processor over ``batches`` (one container), metered; raises if a batch fails."""
    processor, store, dedup_store = _metered_processor()
    for batch in batches:
        outcome = processor.process(batch)
        if outcome.failed_sequence_number is not None:
            raise PipelineError(f"the metered pass failed a batch: {outcome.reason}")
    records = sum(len(b) for b in batches)
    return UnitFigures(label, events, records, len(batches), store.units().plus(dedup_store.units()))


def seed_units(label: str, events: Sequence[Event]) -> UnitFigures:
    """The seed-style consumer's calls for ``events`` on a metered client (one event at a time)."""
    names = {name: name for name in TABLES}
    client = MeteredSeedClient(names)
    SeedStyleConsumer(client, Resources(tables=names)).process(events)
    return UnitFigures(label, len(events), len(events), len(events), client.units())


def hot_shards(events: Sequence[Event], shards: int, batch_events: int) -> UnitFigures:
    """``events`` dealt round-robin in slices of ``batch_events`` to ``shards`` shards (json records,
    one invocation per slice), every shard writing the same items; metered like :func:`project_units`.

    The first pass over all shards is not counted (every item is new then), so the figure is the
    steady state, where every shard's partial of every hot item already exists.
    """
    if shards < 1 or batch_events < 1:
        raise ValueError(f"shards and batch events must be at least 1; got {shards}, {batch_events}")
    processor, store, dedup_store = _metered_processor()
    slices = [events[i : i + batch_events] for i in range(0, len(events), batch_events)]
    warm, counted = slices[:shards], slices[shards:]
    if not counted:
        raise ValueError(f"{len(events)} events fill only {len(slices)} batches: at least {shards + 1} are needed")
    baseline: UnitTally | None = None
    for number, piece in enumerate(slices):
        if number == len(warm):
            baseline = store.units().plus(dedup_store.units())
        shard = f"shardId-{number % shards:012d}"
        records = records_of(piece, RecordFormat.JSON, shard)
        records = [
            StreamRecord(shard, _sequence_number(number * 100_000 + i), r.data, r.arrival, r.partition_key)
            for i, r in enumerate(records)
        ]
        outcome = processor.process(records)
        if outcome.failed_sequence_number is not None:
            raise PipelineError(f"the metered pass failed a batch: {outcome.reason}")
    assert baseline is not None  # noqa: S101 - counted is not empty
    total = store.units().plus(dedup_store.units())
    counted_units = _minus(total, baseline)
    counted_events = sum(len(p) for p in counted)
    return UnitFigures(f"{shards} shards", counted_events, counted_events, len(counted), counted_units)


def _minus(total: UnitTally, base: UnitTally) -> UnitTally:
    return UnitTally(
        {t: n - base.writes.get(t, 0) for t, n in total.writes.items()},
        {t: n - base.write_units.get(t, 0) for t, n in total.write_units.items()},
        {t: n - base.read_units.get(t, 0) for t, n in total.read_units.items()},
        {t: n - base.failed.get(t, 0) for t, n in total.failed.items()},
    )
