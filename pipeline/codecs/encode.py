"""Encoding events into Kinesis records in every format, within Kinesis' limits.

Guarantees of :func:`encode_records`:

- every input event is in exactly one output record, and ``decode_record`` of that record's bytes
  gives it back (equal ``Event``);
- no record exceeds ``max_record_bytes`` counting data and partition key (Kinesis' 1 MiB rule); an
  event too big to fit alone raises :class:`~pipeline.exceptions.RecordTooLargeError` before anything
  is returned;
- batched formats never mix shards in one record: events are grouped by the shard their partition
  key maps to, and the record carries an explicit hash key inside that shard, so aggregation does not
  pile a stream's traffic onto one shard;
- events sharing a partition key keep their input order, within a record and across the records of
  one shard (records of one shard come out in order).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pipeline.codecs.formats import MAX_RECORD_BYTES, RecordFormat
from pipeline.codecs.gzipcodec import gzip_bytes
from pipeline.codecs.kpl import AggregateBuilder
from pipeline.events import Event
from pipeline.events.wire import encode_event
from pipeline.exceptions import RecordTooLargeError
from pipeline.partitioning import ShardMap, hash_key_for, partition_key_for

__all__ = ["DEFAULT_BATCH_RAW_BYTES", "OutputRecord", "encode_event", "encode_records"]

DEFAULT_BATCH_RAW_BYTES: Final = 1024 * 1024
"""Uncompressed NDJSON per gzip batch: ~3,000 events, ~150 KiB gzipped. Bigger buys no density."""
_MAX_KEY: Final = 256


@dataclass(slots=True)
class OutputRecord:
    """One Kinesis record ready for ``PutRecords`` and the events it carries."""

    partition_key: str
    explicit_hash_key: str | None
    data: bytes
    shard_id: str
    events: tuple[Event, ...]

    @property
    def size(self) -> int:
        """Bytes Kinesis counts against its limits: data plus partition key."""
        return len(self.data) + len(self.partition_key.encode())

    def to_entry(self) -> dict[str, Any]:
        """The ``PutRecords`` request entry."""
        entry: dict[str, Any] = {"Data": self.data, "PartitionKey": self.partition_key}
        if self.explicit_hash_key is not None:
            entry["ExplicitHashKey"] = self.explicit_hash_key
        return entry


@dataclass(slots=True)
class _Keyed:
    event: Event
    key: str
    hash_key: int
    wire: bytes


def _check_single(item: _Keyed, data: bytes, limit: int) -> None:
    if len(data) + len(item.key.encode()) > limit:
        raise RecordTooLargeError(
            f"event {item.event.event_id} encodes to {len(data)} bytes; a Kinesis record holds at most {limit}"
        )


def _by_shard(items: Iterable[_Keyed], shard_map: ShardMap) -> dict[str, list[_Keyed]]:
    groups: dict[str, list[_Keyed]] = {}
    for item in items:
        groups.setdefault(shard_map.shard_for(item.hash_key), []).append(item)
    return groups


def _gzip_batches(shard: str, items: list[_Keyed], limit: int, raw_target: int) -> list[OutputRecord]:
    """NDJSON chunks of about ``raw_target`` bytes, gzipped; a chunk that gzips past ``limit`` is halved."""
    chunks: list[list[_Keyed]] = []
    current: list[_Keyed] = []
    raw = 0
    for item in items:
        if current and raw + len(item.wire) + 1 > raw_target:
            chunks.append(current)
            current, raw = [], 0
        current.append(item)
        raw += len(item.wire) + 1
    if current:
        chunks.append(current)
    out = []
    while chunks:
        chunk = chunks.pop(0)
        data = gzip_bytes(b"\n".join(i.wire for i in chunk))
        head = chunk[0]
        if len(data) + len(head.key.encode()) > limit:
            if len(chunk) == 1:
                _check_single(head, data, limit)
            half = len(chunk) // 2
            chunks[:0] = [chunk[:half], chunk[half:]]
            continue
        out.append(OutputRecord(head.key, str(head.hash_key), data, shard, tuple(i.event for i in chunk)))
    return out


def _kpl(shard: str, items: list[_Keyed], limit: int, gzip_groups: bool, raw_target: int) -> list[OutputRecord]:
    """KPL aggregates: one sub-record per event, or (``gzip_groups``) one gzipped NDJSON per key."""
    units: list[tuple[_Keyed, bytes, tuple[Event, ...]]] = []
    if gzip_groups:
        by_key: dict[str, list[_Keyed]] = {}
        for item in items:
            by_key.setdefault(item.key, []).append(item)
        for group in by_key.values():
            for record in _gzip_batches(shard, group, limit - _MAX_KEY, raw_target):
                units.append((group[0], record.data, record.events))
    else:
        units = [(item, item.wire, (item.event,)) for item in items]
    out: list[OutputRecord] = []
    budget = limit - _MAX_KEY  # the outer record's partition key counts too
    builder = AggregateBuilder(budget)
    members: list[tuple[_Keyed, tuple[Event, ...]]] = []

    def close() -> None:
        head = members[0][0]
        events = tuple(e for _, evs in members for e in evs)
        out.append(OutputRecord(head.key, str(head.hash_key), builder.build(), shard, events))

    for head, data, events in units:
        if not builder.try_add(head.key, None, data):
            if not members:
                raise RecordTooLargeError(f"event {head.event.event_id} does not fit a KPL aggregate of {budget} bytes")
            close()
            builder = AggregateBuilder(budget)
            members = []
            if not builder.try_add(head.key, None, data):
                raise RecordTooLargeError(f"event {head.event.event_id} does not fit a KPL aggregate of {budget} bytes")
        members.append((head, events))
    if members:
        close()
    return out


def encode_records(
    events: Sequence[Event],
    record_format: RecordFormat,
    shard_map: ShardMap | None = None,
    *,
    max_record_bytes: int = MAX_RECORD_BYTES,
    batch_raw_bytes: int = DEFAULT_BATCH_RAW_BYTES,
) -> list[OutputRecord]:
    """Pack ``events`` into records of ``record_format``; see the module docstring for the guarantees.

    ``shard_map`` says how the stream's hash-key space is split (default: one shard). Single-event
    formats come out in input order; batched formats come out grouped by shard, each shard in order.
    """
    shards = shard_map or ShardMap.uniform(1)
    items = []
    for event in events:
        key = partition_key_for(event)
        items.append(_Keyed(event, key, hash_key_for(key), encode_event(event)))
    if record_format in (RecordFormat.JSON, RecordFormat.GZIP):
        out = []
        for item in items:
            data = item.wire if record_format is RecordFormat.JSON else gzip_bytes(item.wire)
            _check_single(item, data, max_record_bytes)
            out.append(OutputRecord(item.key, None, data, shards.shard_for(item.hash_key), (item.event,)))
        return out
    records: list[OutputRecord] = []
    for shard, group in _by_shard(items, shards).items():
        if record_format is RecordFormat.GZIP_BATCH:
            records += _gzip_batches(shard, group, max_record_bytes, batch_raw_bytes)
        else:
            records += _kpl(shard, group, max_record_bytes, record_format is RecordFormat.KPL_GZIP, batch_raw_bytes)
    return records
