"""Bad rows: records (or parts of records) that can never become events, kept whole with a reason.

A bad row keeps the raw bytes exactly (base64 in the stored JSON), the reason, where it came from
(shard, sequence number, KPL sub-sequence number, NDJSON line) and when the record arrived. It never
fails a batch and never blocks a shard.

:class:`S3BadRowSink` writes one object per bad row under a key made only of the row's position, so
writing the same row twice (a re-delivered batch) overwrites the same object with the same bytes:
idempotent, no duplicates in the sink.
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

__all__ = ["BadRow", "BadRowSink", "MemoryBadRowSink", "S3BadRowSink"]


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
        """``<prefix>dt=<arrival date>/<shard>/<sequence>-<sub>-<line>.json``: unique and deterministic."""
        sub = "-" if self.sub_sequence_number is None else str(self.sub_sequence_number)
        line = "-" if self.line is None else str(self.line)
        return f"{prefix}dt={self.arrival:%Y-%m-%d}/{self.shard_id}/{self.sequence_number}-{sub}-{line}.json"

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


class BadRowSink(Protocol):
    def write(self, rows: Sequence[BadRow]) -> None:
        """Persist every row, or raise :class:`TransientError` (nothing else) if that cannot be done now."""
        ...


class S3BadRowSink:
    """Bad rows as S3 objects under ``prefix`` in ``bucket``, written a few at once."""

    def __init__(self, s3: Any, bucket: str, prefix: str = "bad-rows/", *, max_concurrency: int = 4) -> None:
        self._writer = S3ObjectWriter(s3, bucket, max_concurrency=max_concurrency)
        self._prefix = prefix

    def write(self, rows: Sequence[BadRow]) -> None:
        self._writer.put_many([(row.key(self._prefix), row.to_json()) for row in rows])


class MemoryBadRowSink:
    """Bad rows in a dict keyed like the S3 objects (for tests and the reference model)."""

    def __init__(self, prefix: str = "bad-rows/") -> None:
        self.prefix = prefix
        self.rows: dict[str, BadRow] = {}
        self.fail_next: int = 0

    def write(self, rows: Sequence[BadRow]) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise TransientError("injected bad-rows sink failure")
        for row in rows:
            self.rows[row.key(self.prefix)] = row
