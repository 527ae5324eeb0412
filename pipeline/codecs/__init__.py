"""The one codec layer every reader and writer uses: JSON, gzip (single or NDJSON batch) and KPL.

Readers call :func:`decode_record` (never raises; errors come back as values that keep their raw
bytes). Writers call :func:`encode_records` (Kinesis limits, shard-aware batching).
"""

from __future__ import annotations

from pipeline.codecs.decode import DecodedEvent, DecodeResult, decode_events, decode_record, decode_records
from pipeline.codecs.encode import DEFAULT_BATCH_RAW_BYTES, OutputRecord, encode_event, encode_records
from pipeline.codecs.formats import (
    GZIP_MAGIC,
    MAX_RECORD_BYTES,
    MAX_RECORDS_PER_PUT,
    MAX_REQUEST_BYTES,
    RecordFormat,
)
from pipeline.codecs.kpl import KPL_MAGIC, UserRecord, aggregate, deaggregate

__all__ = [
    "DEFAULT_BATCH_RAW_BYTES",
    "GZIP_MAGIC",
    "KPL_MAGIC",
    "MAX_RECORDS_PER_PUT",
    "MAX_RECORD_BYTES",
    "MAX_REQUEST_BYTES",
    "DecodeResult",
    "DecodedEvent",
    "OutputRecord",
    "RecordFormat",
    "UserRecord",
    "aggregate",
    "deaggregate",
    "decode_events",
    "decode_record",
    "decode_records",
    "encode_event",
    "encode_records",
]
