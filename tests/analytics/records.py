"""Kinesis record bytes for the decoding tests: events in every record format, and records that are not events.

Shared by the pure test of :func:`analytics.decoding.decoded_rows` and the test of the same function
running inside Flink as the ``decode_record`` table function.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from pipeline.codecs import RecordFormat, encode_event, encode_records
from pipeline.codecs.gzipcodec import gzip_bytes
from pipeline.events import Event
from tests.analytics.events import at, order, unvalidated

__all__ = ["BAD_RECORDS", "FORMATS", "REJECTED", "encoded", "mixed_batch"]

FORMATS: Final = tuple(RecordFormat)


def encoded(events: Sequence[Event], record_format: RecordFormat) -> list[bytes]:
    """The record bytes a producer writes for ``events`` in ``record_format`` (one shard's worth)."""
    return [record.data for record in encode_records(list(events), record_format)]


def _kpl_with_bad_checksum() -> bytes:
    (record,) = encoded([order("k-1", at(), "o-k", "created")], RecordFormat.KPL)
    return record[:-1] + bytes([record[-1] ^ 0xFF])


def mixed_batch(good: Sequence[Event]) -> bytes:
    """A gzip NDJSON batch with one line that is not JSON between the events' lines (line 1)."""
    lines = [encode_event(good[0]), b"{not json", *(encode_event(e) for e in good[1:])]
    return gzip_bytes(b"\n".join(lines))


REJECTED: Final = unvalidated(order("too-precise", at(), "o-r", "created"), total_amount=Decimal("0.00000000001"))
"""An event validation refuses (eleven decimal places of money; the SQL types carry the ten it allows)."""

BAD_RECORDS: Final = {
    "junk": b"not json at all",
    "empty": b"",
    "truncated-gzip": gzip_bytes(b'{"event_id": "x"}')[:12],
    "kpl-bad-checksum": _kpl_with_bad_checksum(),
    "invalid-event": b'{"event_id": "x", "event_type": "teleport"}',
}
"""Records that hold no event at all, each one bad row."""
