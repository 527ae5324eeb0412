"""The stream binding in Flink: raw records of every format through ``decode_record``, junk to the bad rows.

The Kinesis connector cannot run here (its jar comes from Maven), so the records are given to the job
as the same one-column ``BYTES`` table it would produce; everything after it is the managed job's graph.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest

from analytics.changelog import read_items, read_rows
from analytics.flink import bytes_table, run, table_environment
from analytics.job import BAD_ROW_COLUMNS, FileSinks, StreamSource, build
from analytics.metrics import Item, ItemKey
from analytics.reference import expected_windows
from pipeline.codecs import decode_record, encode_event
from pipeline.events import Event
from pipeline.exceptions import DecodeError
from tests.analytics.records import BAD_RECORDS, FORMATS, REJECTED, encoded, mixed_batch
from tools.generate import generate_events

pytestmark = pytest.mark.flink

LATENESS = timedelta(seconds=30)


def _records() -> list[bytes]:
    """Consecutive slices of a workload, one per record format, with bad records between the slices."""
    events = list(generate_events(400, seed=5))
    size = len(events) // len(FORMATS)
    records: list[bytes] = []
    bad = list(BAD_RECORDS.values())
    for n, record_format in enumerate(FORMATS):
        records += encoded(events[n * size : (n + 1) * size], record_format)
        records.append(bad[n % len(bad)])
    records.append(mixed_batch(events[-3:]))
    records.append(encode_event(REJECTED))
    return records


def _decoded_events(records: list[bytes]) -> list[Event]:
    """The events in the order the table function emits them: record order, then within each record."""
    return [r.event for record in records for r in decode_record(record) if not isinstance(r, DecodeError)]


def test_records_of_every_format_give_the_reference_items_and_the_rest_bad_rows(
    flink: dict[str, str], tmp_path: Path
) -> None:
    # GIVEN raw records: every format, records that hold no event, a batch with a bad line, an event
    # the SQL types cannot carry
    records = _records()
    # WHEN the managed job's graph runs over them (a table of record bytes in place of the connector)
    t_env = table_environment(config=flink)
    t_env.create_temporary_view("raw_records", bytes_table(t_env, records))
    run(build(t_env, StreamSource(), FileSinks(tmp_path), LATENESS))
    # THEN the windows are the reference's over the decoded events, in the order they were decoded
    items: dict[ItemKey, Item] = {k: v for metric in read_items(tmp_path).values() for k, v in metric.items()}
    assert items == expected_windows(_decoded_events(records), LATENESS).items
    # AND every unit that is not an event is one bad row with its reason and exact bytes, none lost
    bad_rows = list(read_rows(tmp_path / "bad_rows"))
    assert all(set(row) == {name for name, _ in BAD_ROW_COLUMNS} and row["reason"] for row in bad_rows)
    raws = sorted(base64.b64decode(row["raw_base64"]) for row in bad_rows)
    assert raws == sorted([*BAD_RECORDS.values(), b"{not json", encode_event(REJECTED)])
    (rejected,) = [row for row in bad_rows if base64.b64decode(row["raw_base64"]) == encode_event(REJECTED)]
    assert "total_amount" in rejected["reason"]
