"""Record formats, magic bytes and the Kinesis limits every writer respects."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "GZIP_MAGIC",
    "MAX_DECOMPRESSED_BYTES",
    "MAX_KPL_SUBRECORDS",
    "MAX_RECORDS_PER_PUT",
    "MAX_RECORD_BYTES",
    "MAX_REQUEST_BYTES",
    "RecordFormat",
]

GZIP_MAGIC: Final = b"\x1f\x8b"

MAX_RECORD_BYTES: Final = 1024 * 1024
"""Kinesis: data blob plus partition key of one record, before base64."""
MAX_REQUEST_BYTES: Final = 5 * 1024 * 1024
"""Kinesis: one PutRecords request, data plus partition keys."""
MAX_RECORDS_PER_PUT: Final = 500
MAX_DECOMPRESSED_BYTES: Final = 16 * 1024 * 1024
"""A gzip payload inflating past this is rejected as a decode error (a gzip bomb, not data)."""
MAX_KPL_SUBRECORDS: Final = 100_000
"""A KPL aggregate holding more user records than this is rejected whole, as one decode error.

The format has no count field: a record "claims" sub-records by packing them, 4 bytes each when empty,
so a 10 MiB record could otherwise turn into 2.6 million bad rows. No real aggregate comes close: the
smallest valid event is over 100 bytes of JSON, so even a 10 MiB record holds fewer than 100,000."""


class RecordFormat(StrEnum):
    """How events are packed into Kinesis records. Readers detect the format; writers choose it.

    - ``json``: one event per record. Simplest for every reader; 1,000 events/s/shard at most.
    - ``gzip``: one gzipped event per record. Rarely worth it: small events barely compress.
    - ``gzip-batch``: many events as gzipped NDJSON in one record. Densest; one bad line spoils only
      itself; Firehose's transform splits it.
    - ``kpl``: KPL aggregate of JSON events, each event a sub-record with its own partition key.
    - ``kpl-gzip``: KPL aggregate whose sub-records are gzipped NDJSON batches, one per partition key.
    """

    JSON = "json"
    GZIP = "gzip"
    GZIP_BATCH = "gzip-batch"
    KPL = "kpl"
    KPL_GZIP = "kpl-gzip"
