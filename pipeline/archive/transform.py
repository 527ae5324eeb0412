"""Firehose data transformation: a Firehose event in, a response out, record by record.

The contract (Firehose's, for a Kinesis stream source with dynamic partitioning): every input
``recordId`` comes back exactly once with ``result`` ``Ok`` | ``Dropped`` | ``ProcessingFailed`` and
base64 ``data``; an ``Ok`` record carries ``metadata.partitionKeys`` ``event_type`` and ``dt``, which
Firehose substitutes into :data:`~pipeline.archive.layout.FIREHOSE_PREFIX`. The response must stay
under Lambda's 6 MB synchronous payload limit.

Each record is decoded by the shared codec layer (JSON, NDJSON, gzip, gzipped NDJSON batches, KPL
aggregates: Firehose de-aggregates KPL records of a Kinesis source itself, the transform still
accepts whole aggregates) with the same validation as the consumer (its future horizon measured from
the record's arrival). Each valid event is written as the JSON its producer sent, unknown fields
included, one line per event (an event pretty-printed over several lines is compacted, its text kept).

**Mixed records.** Firehose allows one partition-key set per record, and a batch record (gzip
NDJSON, a KPL-gzip sub-record) may hold events of several types and dates. Such a record is split:

- the largest (type, date) group (most events; the first on a tie) goes back to Firehose as the
  ``Ok`` data with that group's keys, and is buffered, compressed and delivered by Firehose;
- every other group is written by the transform itself, gzipped, to S3 under its own partition
  prefix, as ``split-<shard>-<sequence>-<sub>.gz`` (see :mod:`pipeline.archive.layout`).

The key is the record's Kinesis position and the bytes are deterministic, so a retried invocation
overwrites each split object with identical bytes: no duplicate, whatever Firehose retries. The
trade-off: split objects bypass Firehose's buffering (one small object per extra group and record;
producers that batch by type keep them rare) and need the function to have ``s3:PutObject`` on the
archive prefixes. The alternatives do not meet the contract: Firehose cannot emit several records
for one ``recordId``; its own JSON de-aggregation cannot read gzip or KPL; republishing the groups
to the stream would make the consumer count them twice; a "mixed" partition breaks "each event
under its own type".

**Failures are never silent.**

- A record with no event at all (junk, bad gzip, bad KPL MD5, invalid events) is ``ProcessingFailed``:
  Firehose writes its raw bytes under the error prefix (``errors/processing-failed/...``).
- A record with some events and some undecodable parts (a bad NDJSON line, a bad KPL sub-record)
  delivers its events and writes each bad part, raw bytes in base64 with the reason and position, as
  a Firehose-style error document to ``errors/processing-failed/<date>/split-<position>.gz``.
- If a record's output does not fit in what is left of the response budget, the transform writes
  everything of it itself (events under their partitions, bad parts under the error prefix) and
  reports it ``Dropped``: Firehose has nothing more to deliver for it. ``Dropped`` never means lost here.
- Any other error while transforming one record makes that record ``ProcessingFailed`` with its
  reason; the other records of the invocation are unaffected.
- If a write of the transform's own fails, :class:`~pipeline.exceptions.TransientError` is raised:
  the invocation fails, Firehose retries it (``NumberOfRetries``), then sends the whole batch to the
  error prefix. Writes are idempotent, so a retry after a partial write duplicates nothing.

Apart from those writes (through an injected :class:`ObjectWriter`) the transform is pure.
Thread-safe: no state is kept between invocations.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import msgspec
import orjson

from pipeline.archive.errors import TransformContractError
from pipeline.archive.layout import Partition, error_prefix, split_object_name
from pipeline.codecs import decode_record
from pipeline.codecs.gzipcodec import gzip_bytes
from pipeline.events import DEFAULT_POLICY, ValidationPolicy
from pipeline.exceptions import ConfigurationError, DecodeError
from pipeline.retry import NO_DEADLINE, Deadline

__all__ = [
    "MAX_RESPONSE_BYTES",
    "FirehoseTransform",
    "ObjectWriter",
    "TransformResult",
    "TransformStats",
    "archive_bucket_from_env",
    "archive_line",
]

MAX_RESPONSE_BYTES: Final = 6_000_000
"""Lambda refuses synchronous responses over 6 MB (6,291,456 bytes); this keeps a margin for the envelope."""
_ENTRY_OVERHEAD: Final = 160  # JSON keys, quotes and partition keys around one response record
_PARTIAL_ERROR: Final = "Transform.PartialDecodeError"
_DECODE_ERROR: Final = "Transform.DecodeError"
_OK, _DROPPED, _FAILED = "Ok", "Dropped", "ProcessingFailed"


def archive_bucket_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``ARCHIVE_BUCKET`` (the template sets it on the transform); :class:`ConfigurationError` if unset."""
    env = os.environ if environ is None else environ
    bucket = env.get("ARCHIVE_BUCKET", "")
    if not bucket:
        raise ConfigurationError("ARCHIVE_BUCKET is not set: the transform writes split records there")
    return bucket


class ObjectWriter(Protocol):
    def put_many(self, objects: Sequence[tuple[str, bytes]], deadline: Deadline = NO_DEADLINE) -> None:
        """Write every ``(key, body)``, retrying until ``deadline``, or raise :class:`TransientError`
        (nothing else). Idempotent per key. (:class:`~pipeline.objectstore.S3ObjectWriter` in Lambda.)"""
        ...


@dataclass(slots=True)
class TransformStats:
    """What one invocation did, for logs and metrics."""

    records: int = 0
    ok: int = 0
    dropped: int = 0
    failed: int = 0
    events: int = 0
    mixed_records: int = 0
    split_objects: int = 0
    error_parts: int = 0
    response_bytes: int = 0
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "ok": self.ok,
            "dropped": self.dropped,
            "failed": self.failed,
            "events": self.events,
            "mixed_records": self.mixed_records,
            "split_objects": self.split_objects,
            "error_parts": self.error_parts,
            "response_bytes": self.response_bytes,
            "reasons": self.reasons[:10],
        }


@dataclass(frozen=True, slots=True)
class TransformResult:
    response: dict[str, Any]
    stats: TransformStats


@dataclass(frozen=True, slots=True)
class _Input:
    record_id: str
    data: bytes | None  # None when ``data`` is not base64 (then ``raw_field`` keeps what came)
    raw_field: str
    arrival: datetime
    shard_id: str
    sequence_number: str
    sub: int | None


def _inputs(event: Mapping[str, Any]) -> list[_Input]:
    records = event.get("records")
    if not isinstance(records, list):
        raise TransformContractError("not a Firehose transformation event: no 'records' list")
    out = []
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("recordId"), str):
            raise TransformContractError(f"record {index} of the Firehose event has no recordId")
        meta = record.get("kinesisRecordMetadata") or {}
        raw_field = record.get("data")
        data: bytes | None
        try:
            data = base64.b64decode(raw_field, validate=True) if isinstance(raw_field, str) else None
        except (binascii.Error, ValueError):
            data = None
        arrival_ms = meta.get("approximateArrivalTimestamp", record.get("approximateArrivalTimestamp", 0))
        sub = meta.get("subsequenceNumber")
        out.append(
            _Input(
                record["recordId"],
                data,
                raw_field if isinstance(raw_field, str) else "",
                datetime.fromtimestamp(int(arrival_ms or 0) / 1000, UTC),
                str(meta.get("shardId", "")),
                str(meta.get("sequenceNumber", "")),
                int(sub) if isinstance(sub, int | str) and str(sub).isdigit() else None,
            )
        )
    return out


def archive_line(raw: bytes) -> bytes:
    """An event's line in the archive: the JSON its producer sent, on one line, with a newline."""
    text = raw.strip()
    if b"\n" in text or b"\r" in text:
        text = msgspec.json.format(text, indent=-1)  # compacts whitespace only: every value's text is kept
    return text + b"\n"


def _error_document(record: _Input, reason: str, raw: bytes, code: str, error: DecodeError | None = None) -> bytes:
    """One line in the shape of Firehose's ``processing-failed`` documents, plus the Kinesis position.
    Deterministic (no wall-clock time): rewriting it on a retry gives the same bytes."""
    document: dict[str, Any] = {
        "attemptsMade": 1,
        "arrivalTimestamp": int(record.arrival.timestamp() * 1000),
        "errorCode": code,
        "errorMessage": reason,
        "rawData": base64.b64encode(raw).decode(),
        "recordId": record.record_id,
        "shardId": record.shard_id,
        "sequenceNumber": record.sequence_number,
        "subSequenceNumber": record.sub,
    }
    if error is not None:
        document["kplSubSequenceNumber"] = error.sub_sequence_number
        document["line"] = error.line
    return orjson.dumps(document) + b"\n"


class FirehoseTransform:
    """The transformation; see the module docstring for the contract, the split design and failures.

    ``writer`` receives the transform's own objects (split groups, partial errors, spilled records).
    ``max_response_bytes`` is the response budget (default :data:`MAX_RESPONSE_BYTES`).
    """

    def __init__(
        self,
        writer: ObjectWriter,
        *,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        policy: ValidationPolicy = DEFAULT_POLICY,
    ) -> None:
        self._writer = writer
        self._budget = max_response_bytes
        self._policy = policy

    def __call__(self, event: Mapping[str, Any], deadline: Deadline = NO_DEADLINE) -> dict[str, Any]:
        """The response only (what the Lambda handler returns)."""
        return self.transform(event, deadline).response

    def transform(self, event: Mapping[str, Any], deadline: Deadline = NO_DEADLINE) -> TransformResult:
        """Transform every record of ``event``; raises :class:`~pipeline.exceptions.TransientError` if an
        own write still fails at ``deadline`` and :class:`TransformContractError` if ``event`` is not a
        Firehose transformation event."""
        stats = TransformStats()
        out: list[dict[str, Any]] = []
        objects: list[tuple[str, bytes]] = []
        used = 16  # {"records":[]}
        for record in _inputs(event):
            stats.records += 1
            mark = len(objects)
            try:
                entry = self._one(record, self._budget - used, objects, stats)
            except Exception as exc:  # noqa: BLE001 - containment: one record's failure must not fail the others
                del objects[mark:]
                reason = f"transform failed on this record: {type(exc).__name__}: {exc}"
                stats.reasons.append(reason)
                raw = record.data if record.data is not None else record.raw_field.encode()
                name = split_object_name(record.record_id, record.shard_id, record.sequence_number, record.sub)
                entry = self._failed(record, raw, reason, name, self._budget - used, objects, stats)
            used += _ENTRY_OVERHEAD + len(record.record_id) + len(entry.get("data", ""))
            out.append(entry)
        self._writer.put_many(objects, deadline)
        stats.response_bytes = used
        return TransformResult({"records": out}, stats)

    def _one(
        self, record: _Input, room: int, objects: list[tuple[str, bytes]], stats: TransformStats
    ) -> dict[str, Any]:
        name = split_object_name(record.record_id, record.shard_id, record.sequence_number, record.sub)
        if record.data is None:
            reason = "record data is not base64"
            stats.reasons.append(reason)
            return self._failed(record, record.raw_field.encode(), reason, name, room, objects, stats)
        groups: dict[Partition, list[bytes]] = {}
        errors: list[DecodeError] = []
        not_after = self._policy.not_after(record.arrival)
        for result in decode_record(record.data, record.shard_id, record.sequence_number, not_after):
            if isinstance(result, DecodeError):
                errors.append(result)
            else:
                groups.setdefault(Partition.of(result.event), []).append(archive_line(result.raw))
        if not groups:
            reason = "; ".join(e.reason for e in errors[:3]) or "no events"
            stats.reasons.append(reason)
            return self._failed(record, record.data, reason, name, room, objects, stats)
        stats.events += sum(len(lines) for lines in groups.values())
        if errors:
            stats.error_parts += len(errors)
            stats.reasons.extend(e.reason for e in errors[:3])
            body = b"".join(_error_document(record, e.reason, e.raw, _PARTIAL_ERROR, e) for e in errors)
            objects.append((error_prefix(record.arrival) + name, gzip_bytes(body)))
            stats.split_objects += 1
        if len(groups) > 1:
            stats.mixed_records += 1
        main = max(groups, key=lambda p: len(groups[p]))  # max keeps the first of equals
        data = base64.b64encode(b"".join(groups[main])).decode()
        spill = _ENTRY_OVERHEAD + len(record.record_id) + len(data) > room
        for partition, lines in groups.items():
            if partition != main or spill:
                objects.append((partition.prefix + name, gzip_bytes(b"".join(lines))))
                stats.split_objects += 1
        if spill:
            stats.dropped += 1
            return {"recordId": record.record_id, "result": _DROPPED, "data": ""}
        stats.ok += 1
        return {"recordId": record.record_id, "result": _OK, "data": data, "metadata": {"partitionKeys": main.keys()}}

    def _failed(
        self,
        record: _Input,
        raw: bytes,
        reason: str,
        name: str,
        room: int,
        objects: list[tuple[str, bytes]],
        stats: TransformStats,
    ) -> dict[str, Any]:
        """``ProcessingFailed`` echoing the input (Firehose writes it under the error prefix), or, when
        even the echo does not fit the response, the error document written here and ``Dropped``."""
        echo = record.raw_field
        if _ENTRY_OVERHEAD + len(record.record_id) + len(echo) <= room:
            stats.failed += 1
            return {"recordId": record.record_id, "result": _FAILED, "data": echo}
        document = _error_document(record, reason, raw, _DECODE_ERROR)
        objects.append((error_prefix(record.arrival) + name, gzip_bytes(document)))
        stats.split_objects += 1
        stats.dropped += 1
        return {"recordId": record.record_id, "result": _DROPPED, "data": ""}
