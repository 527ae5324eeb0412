"""The decoding function (pure): records of every format become rows; anything else a bad row, never an error."""

from __future__ import annotations

import base64

import pytest

from analytics.decoding import BAD, DECODED_COLUMNS, EVENT, decoded_rows
from analytics.rows import EVENT_COLUMNS, EventRow, event_row
from pipeline.codecs import RecordFormat, UserRecord, aggregate, encode_event
from pipeline.events import Event
from tests.analytics.records import BAD_RECORDS, FORMATS, REJECTED, encoded, mixed_batch
from tools.generate import generate_events

EVENTS = list(generate_events(300, seed=3))
_KIND, _REASON, _RAW, _SUB, _LINE = 0, len(EVENT_COLUMNS) + 1, len(EVENT_COLUMNS) + 2, -2, -1


def _expected(event: Event) -> EventRow:
    row = event_row(event)
    assert isinstance(row, EventRow)
    return row


@pytest.mark.parametrize("record_format", [pytest.param(f, id=f.value) for f in FORMATS])
def test_every_format_decodes_to_one_row_per_event_in_record_order(record_format: RecordFormat) -> None:
    # GIVEN the records a producer writes in this format
    records = encoded(EVENTS, record_format)
    # WHEN each record goes through the function
    rows = [row for record in records for row in decoded_rows(record)]
    # THEN every event comes out once, as the row the archive binding would stage for it
    assert all(row[_KIND] == EVENT and len(row) == len(DECODED_COLUMNS) for row in rows)
    assert sorted(tuple(row[1 : 1 + len(EVENT_COLUMNS)]) for row in rows) == sorted(_expected(e) for e in EVENTS)


@pytest.mark.parametrize(("name", "record"), [pytest.param(n, r, id=n) for n, r in BAD_RECORDS.items()])
def test_a_record_with_no_event_is_one_bad_row_with_its_raw_bytes(name: str, record: bytes) -> None:
    (row,) = decoded_rows(record)
    assert row[_KIND] == BAD
    assert row[1 : 1 + len(EVENT_COLUMNS)] == (None,) * len(EVENT_COLUMNS)
    assert row[_REASON]
    assert base64.b64decode(row[_RAW]) == record


def test_a_bad_line_in_a_batch_spoils_only_that_line() -> None:
    # GIVEN a gzip batch of three events with a broken line after the first
    rows = list(decoded_rows(mixed_batch(EVENTS[:3])))
    # THEN three events and one bad row that names the line and keeps its bytes
    assert [row[_KIND] for row in rows].count(EVENT) == 3
    (bad,) = [row for row in rows if row[_KIND] == BAD]
    assert (bad[_LINE], base64.b64decode(bad[_RAW])) == (1, b"{not json")


def test_an_event_validation_refuses_is_a_bad_row_that_keeps_its_bytes() -> None:
    (row,) = decoded_rows(encode_event(REJECTED))
    assert row[_KIND] == BAD
    assert "total_amount" in row[_REASON]
    assert base64.b64decode(row[_RAW]) == encode_event(REJECTED)


def test_a_bad_kpl_sub_record_is_one_bad_row_that_names_it() -> None:
    # GIVEN an aggregate of an event, junk, and another event
    payloads = [encode_event(EVENTS[0]), b"junk", encode_event(EVENTS[1])]
    record = aggregate([UserRecord(f"k{i}", None, data) for i, data in enumerate(payloads)])
    # THEN two events and one bad row for sub-record 1, with its bytes
    rows = list(decoded_rows(record))
    assert [row[_KIND] for row in rows] == [EVENT, BAD, EVENT]
    assert (rows[1][_SUB], base64.b64decode(rows[1][_RAW])) == (1, b"junk")
