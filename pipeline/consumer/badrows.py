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

import orjson

from pipeline.exceptions import DecodeError
from pipeline.objectstore import S3ObjectWriter
from pipeline.retry import NO_DEADLINE, Deadline
from pipeline.stream import encode_position

__all__ = ["BadRow", "S3BadRowSink", "group_by_record", "record_key"]


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


class S3BadRowSink:
    """Bad rows as S3 objects under ``prefix`` in ``bucket``, one per record (a :class:`~pipeline.sinks.Sink`).

    ``add`` buffers a row; ``flush`` writes one object per record holding all of that record's rows
    added since the last flush (the caller adds every bad row of each record it touches, so an object
    is always rewritten whole), and returns the first position of a row not written.
    """

    def __init__(self, writer: S3ObjectWriter, prefix: str = "bad-rows/") -> None:
        self._writer = writer
        self._prefix = prefix
        self._rows: list[BadRow] = []

    def add(self, position: str, item: BadRow) -> None:
        self._rows.append(item)

    def discard(self) -> str | None:
        rows, self._rows = self._rows, []
        self._writer.discard()
        return min((row.position for row in rows), default=None)

    def flush(self, shard_id: str, deadline: Deadline = NO_DEADLINE) -> str | None:
        rows, self._rows = self._rows, []
        for key, mine in group_by_record(rows, self._prefix).items():
            self._writer.add(mine[0].position, (key, b"\n".join(r.to_json() for r in mine) + b"\n"))
        return self._writer.flush(shard_id, deadline)
