"""Raw Kinesis records to rows, in the job: the table function ``decode_record`` and its pure core.

The managed application's Kinesis source hands each record's bytes to the SQL as they are; the
connector inflates nothing, splits nothing and de-aggregates nothing. This function does all of it
through the project's one codec layer (:func:`pipeline.codecs.decode_record`: JSON, gzip, NDJSON
batches, KPL aggregates, in any mix) and maps each event with :func:`analytics.rows.event_row`.

Guarantees of :func:`decoded_rows` (and so of the table function): it never raises, whatever the
bytes; a record that holds ``n`` events yields ``n`` rows of kind ``event`` in record order, and each
unit that cannot become an event (junk, a bad gzip stream, a bad KPL checksum, one bad NDJSON line, an
event the SQL types cannot carry exactly) yields one row of kind ``bad`` with the reason and the raw
bytes of that unit in base64, so the job routes it to the bad-rows output instead of failing. Columns
are :data:`DECODED_COLUMNS`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any, Final

from analytics.rows import EVENT_COLUMNS, RowRejection, event_row
from pipeline.codecs import decode_record, encode_event
from pipeline.exceptions import DecodeError

__all__ = ["BAD", "DECODED_COLUMNS", "EVENT", "DecodedRow", "decode_record_function", "decoded_rows"]

EVENT: Final = "event"
BAD: Final = "bad"
DECODED_COLUMNS: Final = (
    ("kind", "STRING"),
    *((name, sql_type.removesuffix(" NOT NULL")) for name, sql_type in EVENT_COLUMNS),
    ("reason", "STRING"),
    ("raw_base64", "STRING"),
    ("sub_sequence_number", "INT"),
    ("line", "INT"),
)
"""The table function's output: ``kind`` (``event`` | ``bad``), the event columns, then the bad row's
reason, raw bytes (base64), KPL sub-record index and NDJSON line (``None`` where they do not apply)."""

DecodedRow = tuple[Any, ...]
_NO_EVENT: Final = (None,) * len(EVENT_COLUMNS)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def decoded_rows(data: bytes) -> Iterator[DecodedRow]:
    """The rows of one record's bytes, in :data:`DECODED_COLUMNS` order (see the module docstring)."""
    for result in decode_record(bytes(data)):
        if isinstance(result, DecodeError):
            yield (BAD, *_NO_EVENT, result.reason, _b64(result.raw), result.sub_sequence_number, result.line)
            continue
        row = event_row(result.event)
        if isinstance(row, RowRejection):
            event_part = (row.event_id, row.event_type) + (None,) * (len(EVENT_COLUMNS) - 2)
            raw = _b64(encode_event(result.event))
            yield (BAD, *event_part, row.reason, raw, result.sub_sequence_number, result.line)
            continue
        yield (EVENT, *row, None, None, None, None)


def decode_record_function() -> Any:
    """:func:`decoded_rows` as a PyFlink table function, to register as ``decode_record``."""
    from analytics.flink import table_function

    return table_function(decoded_rows, [sql_type for _, sql_type in DECODED_COLUMNS])
