"""Bad rows: records (or parts of records) that can never become counted events, kept whole with a reason.

A bad row keeps the raw bytes exactly (base64 in the stored JSON), the reason, where it came from
(shard, sequence number, KPL sub-sequence number, NDJSON line) and when the record arrived. It never
fails a batch and never blocks a shard. Reasons: undecodable bytes, an invalid event, or an event
whose effects no store would take (a plugin failure, a key or item past DynamoDB's limits).

:class:`S3BadRowSink` writes **one object per Kinesis record** holding all of that record's bad rows
as NDJSON, under a key made only of the record's position
(``<prefix>dt=<arrival date>/<shard>/<sequence number>.ndjson``): 5,000 bad lines in one gzip batch
are one PUT, and writing the same record's rows again (a re-delivered batch) overwrites the same
object with the same rows: idempotent, no duplicates in the sink.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from pipeline.exceptions import DecodeError, TransientError
from pipeline.metrics.positions import encode_position
from pipeline.objectstore import S3ObjectWriter

__all__ = ["BadRow", "BadRowSink", "MemoryBadRowSink", "S3BadRowSink", "record_key"]


def record_key(prefix: str, arrival: datetime, shard_id: str, sequence_number: str) -> str:
    """The object holding one record's bad rows: ``<prefix>dt=<arrival date>/<shard>/<sequence>.ndjson``."""
    return f"{prefix}dt={arrival:%Y-%m-%d}/{shard_id}/{sequence_number}.ndjson"


@dataclass(frozen=True, slots=True)
class BadRow:
    reason: str
    raw: bytes
    shard_id: str
    sequence_number: str
    sub_sequence_number: int | None
    line: int | None
    arrival: datetime

    @classmethod
    def from_error(cls, error: DecodeError, arrival: datetime) -> BadRow:
        return cls(
            error.reason,
            error.raw,
            error.shard_id,
            error.sequence_number,
            error.sub_sequence_number,
            error.line,
            arrival,
        )

    @property
    def position(self) -> str:
        return encode_position(self.sequence_number, self.sub_sequence_number, self.line or 0)

    def key(self, prefix: str) -> str:
        """The object this row is stored in (the one of its record)."""
        return record_key(prefix, self.arrival, self.shard_id, self.sequence_number)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "reason": self.reason,
                "raw_base64": base64.b64encode(self.raw).decode(),
                "raw_bytes": len(self.raw),
                "shard_id": self.shard_id,
                "sequence_number": self.sequence_number,
                "sub_sequence_number": self.sub_sequence_number,
                "line": self.line,
                "arrival": self.arrival.isoformat(),
            }
        )


def group_by_record(rows: Sequence[BadRow], prefix: str) -> dict[str, list[BadRow]]:
    """Rows per record object, each record's rows in stream order (a deterministic object body)."""
    objects: dict[str, list[BadRow]] = {}
    for row in sorted(rows, key=lambda r: r.position):
        objects.setdefault(row.key(prefix), []).append(row)
    return objects


class BadRowSink(Protocol):
    def write(self, rows: Sequence[BadRow]) -> None:
        """Persist every row, or raise :class:`TransientError` (nothing else) if that cannot be done now.

        ``rows`` holds *all* the bad rows of each record it touches (a record's object is rewritten whole).
        """
        ...


class S3BadRowSink:
    """Bad rows as S3 objects under ``prefix`` in ``bucket``, one per record, a few written at once."""

    def __init__(self, s3: Any, bucket: str, prefix: str = "bad-rows/", *, max_concurrency: int = 4) -> None:
        self._writer = S3ObjectWriter(s3, bucket, max_concurrency=max_concurrency)
        self._prefix = prefix

    def write(self, rows: Sequence[BadRow]) -> None:
        objects = group_by_record(rows, self._prefix)
        self._writer.put_many([(key, b"\n".join(r.to_json() for r in mine) + b"\n") for key, mine in objects.items()])


class MemoryBadRowSink:
    """Bad rows in a dict of objects keyed like the S3 ones (for tests and the reference model)."""

    def __init__(self, prefix: str = "bad-rows/") -> None:
        self.prefix = prefix
        self.objects: dict[str, list[BadRow]] = {}
        self.puts = 0
        self.fail_next: int = 0

    @property
    def rows(self) -> list[BadRow]:
        """Every stored row, record by record."""
        return [row for key in sorted(self.objects) for row in self.objects[key]]

    def write(self, rows: Sequence[BadRow]) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise TransientError("injected bad-rows sink failure")
        for key, mine in group_by_record(rows, self.prefix).items():
            self.puts += 1
            self.objects[key] = mine
