"""The batch processor: one Kinesis batch in, effects applied exactly once, the Lambda response out.

The failure contract (Lambda with ``ReportBatchItemFailures``): Lambda checkpoints before the
lowest sequence number the response reports and re-delivers everything from it. So the processor
reports the first record that has *any* effect not persisted, and guarantees every record before it
has *all* its effects persisted. Records after it may have had effects persisted too: the writer's
per-shard watermarks make their re-delivery harmless. This is why a transient failure anywhere stops
the batch at exactly one sequence number, instead of Powertools' ``BatchProcessor`` habit of
processing every record after a failure (which double-counts on the retry).

Records that can never succeed (undecodable bytes, invalid events) are not failures: they become bad
rows, go to the bad-rows sink, and processing continues. A batch of nothing but bad rows succeeds.

Timeline of one batch::

    decode all records ─ bad rows ──────────────────────────────┐
          │                                                     ├─ min(failed positions) -> response
          └─ dedupe event ids ─ context (1 batch read) ─ plugins ─ writer.flush (PutOnce | counters | messages)

Not thread-safe: one processor per Lambda container (Lambda runs one invocation at a time in it).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pipeline.codecs import DecodedEvent, decode_record
from pipeline.consumer.badrows import BadRow, BadRowSink
from pipeline.events import Event
from pipeline.exceptions import DecodeError, TransientError
from pipeline.metrics.flush import FlushResult
from pipeline.metrics.plan import Positioned
from pipeline.metrics.positions import encode_position, first_position_of
from pipeline.plugins.base import BatchContext, Plugin

__all__ = ["BatchOutcome", "BatchProcessor", "ContextLoader", "KinesisRecord", "MetricWriter"]


@dataclass(frozen=True, slots=True)
class KinesisRecord:
    """What the processor needs of one Kinesis record (the handler builds these from the Lambda event)."""

    shard_id: str
    sequence_number: str
    data: bytes
    arrival: datetime


class MetricWriter(Protocol):
    def flush(self, shard_id: str, effects: Sequence[Positioned]) -> FlushResult: ...


class ContextLoader(Protocol):
    def load(self, events: Sequence[Event]) -> BatchContext:
        """Read what plugins need for these events, in batch reads. Raises TransientError when it cannot."""
        ...


@dataclass(slots=True)
class BatchOutcome:
    """The result of one batch: the Lambda response and what happened, for logs and metrics."""

    failed_sequence_number: str | None
    records: int = 0
    events: int = 0
    duplicates: int = 0
    bad_rows: int = 0
    effects: int = 0
    reason: str = ""
    flush: FlushResult | None = None
    bad_row_reasons: list[str] = field(default_factory=list)

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The ``ReportBatchItemFailures`` response Lambda expects."""
        if self.failed_sequence_number is None:
            return {"batchItemFailures": []}
        return {"batchItemFailures": [{"itemIdentifier": self.failed_sequence_number}]}


class BatchProcessor:
    """Decode, enrich and write one batch of records from one shard. See the module docstring."""

    def __init__(
        self,
        plugins: Sequence[Plugin],
        writer: MetricWriter,
        context_loader: ContextLoader,
        bad_rows: BadRowSink,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._plugins = tuple(plugins)
        self._writer = writer
        self._context = context_loader
        self._bad_rows = bad_rows
        self._clock = clock

    def process(self, records: Sequence[KinesisRecord]) -> BatchOutcome:
        """Process a batch of one shard's records in sequence order; never raises for bad input.

        Raises only for bugs and misconfiguration (which Lambda then retries as a function error).
        """
        if not records:
            return BatchOutcome(None)
        shard_id = records[0].shard_id
        outcome = BatchOutcome(None, records=len(records))
        decoded, bad = self._decode(records)
        outcome.bad_rows = len(bad)
        outcome.bad_row_reasons = [row.reason for row in bad]
        unique = _unique(decoded)
        outcome.events = len(unique)
        outcome.duplicates = len(decoded) - len(unique)
        failed: list[str] = []

        bad_failed = self._write_bad_rows(bad)
        if bad_failed is not None:
            failed.append(bad_failed)
            outcome.reason = "bad-rows sink unavailable"
        try:
            context = self._context.load([d.event for d in unique])
        except TransientError as exc:
            outcome.reason = f"context read failed: {exc}"
            failed.append(first_position_of(records[0].sequence_number))
        else:
            effects = self._effects(unique, context)
            outcome.effects = len(effects)
            outcome.flush = self._writer.flush(shard_id, effects)
            if outcome.flush.failed_from is not None:
                failed.append(outcome.flush.failed_from)
                outcome.reason = outcome.reason or "writes not persisted after retries"
        if failed:
            outcome.failed_sequence_number = _record_of(records, min(failed))
        return outcome

    # ------------------------------------------------------------------ steps

    @staticmethod
    def _decode(records: Sequence[KinesisRecord]) -> tuple[list[DecodedEvent], list[BadRow]]:
        decoded: list[DecodedEvent] = []
        bad: list[BadRow] = []
        for record in records:
            for result in decode_record(record.data, record.shard_id, record.sequence_number):
                if isinstance(result, DecodeError):
                    bad.append(BadRow.from_error(result, record.arrival))
                else:
                    decoded.append(result)
        return decoded, bad

    def _write_bad_rows(self, bad: list[BadRow]) -> str | None:
        """Write every bad row; on a transient failure, the position of the first row not written."""
        if not bad:
            return None
        try:
            self._bad_rows.write(bad)
        except TransientError:
            return min(row.position for row in bad)
        return None

    def _effects(self, unique: list[DecodedEvent], context: BatchContext) -> list[Positioned]:
        out: list[Positioned] = []
        for plugin in self._plugins:
            mine = [d for d in unique if d.event.event_type in plugin.event_types]
            if not mine:
                continue
            per_event = plugin.effects([d.event for d in mine], context)
            if len(per_event) != len(mine):
                raise RuntimeError(
                    f"plugin {plugin.name} returned {len(per_event)} effect lists for {len(mine)} events"
                )
            for decoded, effects in zip(mine, per_event, strict=True):
                position = encode_position(decoded.sequence_number, decoded.sub_sequence_number, decoded.line)
                out.extend(Positioned(position, effect) for effect in effects)
        return out


def _unique(decoded: list[DecodedEvent]) -> list[DecodedEvent]:
    """First occurrence of each event id, in stream order: a duplicate within the batch counts once."""
    seen: set[str] = set()
    out = []
    for d in decoded:
        if d.event.event_id not in seen:
            seen.add(d.event.event_id)
            out.append(d)
    return out


def _record_of(records: Sequence[KinesisRecord], position: str) -> str:
    """The sequence number of the record that holds ``position`` (records are in sequence order)."""
    starts = [first_position_of(r.sequence_number) for r in records]
    index = max(bisect.bisect_right(starts, position) - 1, 0)
    return records[index].sequence_number
