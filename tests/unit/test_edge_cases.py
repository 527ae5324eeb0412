"""Every edge case of issue 8 through the Kinesis handler and the Firehose transform: poison events end
as one bad row each with their reason, every other event counts once, nothing raises.

The corpus is ``tests/events/edge_cases.ndjson``: order events in every status and synonym, events at
the limits that are still valid (an 8,000-character url, 28-digit money, unknown fields), producer
resends of earlier lines, and poison events past every limit (each marked with the field its reason
must name in an ``_expect`` field, which the decoder ignores as any unknown field), then a junk line.
It is also the input of ``pipeline demo --input`` in ``tests/e2e/test_demo.py``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.archive.transform import FirehoseTransform
from pipeline.consumer.processor import BatchProcessor
from pipeline.events import Event, decode_event
from pipeline.exceptions import EventValidationError
from pipeline.metrics.effects import Add, Effect
from pipeline.plugins import REGISTRY, BatchContext, Read
from pipeline.stream import StreamRecord, lambda_event
from tests.consumer_harness import memory_consumer, stream_arn
from tools.local.esm import EsmSettings, ShardDriver
from tools.memory import MemoryObjectWriter
from tools.oracle import expected_tables

CORPUS = Path(__file__).resolve().parents[1] / "events" / "edge_cases.ndjson"
ARRIVAL = datetime(2026, 11, 30, tzinfo=UTC)
SHARD = "shardId-000000000000"


def _corpus() -> tuple[list[bytes], list[Event], dict[bytes, str]]:
    """All lines; the valid events in order; each poison line with the field its reason must name."""
    lines = CORPUS.read_bytes().splitlines()
    valid: list[Event] = []
    poison: dict[bytes, str] = {}
    for line in lines:
        try:
            valid.append(decode_event(line, ARRIVAL + timedelta(days=1)))
        except EventValidationError:
            doc = orjson.loads(line) if line.startswith(b"{") else {"_expect": "invalid JSON"}
            poison[line] = str(doc["_expect"])
    return lines, valid, poison


def _records(lines: Sequence[bytes], first: int = 1) -> list[StreamRecord]:
    return [StreamRecord(SHARD, f"{first + i:030d}", line, ARRIVAL, "k") for i, line in enumerate(lines)]


def test_the_corpus_covers_every_case() -> None:
    lines, valid, poison = _corpus()
    expected = {line for line, field in poison.items() if field != "invalid JSON"}
    assert len(expected) == 22
    assert len(poison) == 23  # and the junk line
    assert len(valid) + len(poison) == len(lines)
    assert len({e.event_id for e in valid}) < len(valid)  # resends are in it
    statuses = {e.data.status for e in valid if e.event_type == "order_event"}  # type: ignore[union-attr]
    assert {"pending", "placed", "shipped", "refunded", "complete", "canceled"} <= statuses


def test_the_handler_counts_every_valid_event_once_and_makes_each_poison_event_one_bad_row() -> None:
    # GIVEN the corpus as one JSON record per line, in batches of 7 (resends land in later batches)
    lines, valid, poison = _corpus()
    consumer = memory_consumer()
    driver = ShardDriver(consumer.handler, EsmSettings(batch_size=7), stream_arn=stream_arn)
    # WHEN Lambda's event source mapping drives the handler over them
    driver.drain(_records(lines))
    # THEN no function error, no retry: one invocation per batch
    assert driver.stats.function_errors == 0
    assert driver.stats.partial_failures == 0
    assert driver.stats.invocations == -(-len(lines) // 7)
    # AND every valid event counted exactly once (the oracle of the unique events)
    tables = consumer.store.tables()
    assert tables == expected_tables(valid)
    # AND each poison line is one bad row keeping its bytes, its reason naming the field
    rows = {row.raw: row.reason for row in consumer.sink.rows}
    assert set(rows) == set(poison)
    for line, field in poison.items():
        assert field in rows[line], (field, rows[line])
    # AND the orders of every status count: no valid order event disappears
    statuses = {str(key[1][1]).split("#")[-1] for key in tables["order_metrics"] if key[0][1] == "daily_order_status"}
    assert {"pending", "placed", "shipped", "refunded", "completed", "cancelled", "in transit"} <= statuses


def test_the_transform_answers_each_record_ok_or_processing_failed() -> None:
    # GIVEN the corpus as a Firehose event from a Kinesis source
    lines, _, poison = _corpus()
    event = {
        "records": [
            {
                "recordId": f"r-{i}",
                "approximateArrivalTimestamp": int(ARRIVAL.timestamp() * 1000),
                "data": base64.b64encode(line).decode(),
                "kinesisRecordMetadata": {"shardId": SHARD, "sequenceNumber": f"{i:030d}"},
            }
            for i, line in enumerate(lines)
        ]
    }
    # WHEN transformed
    response = FirehoseTransform(MemoryObjectWriter()).transform(event).response
    # THEN poison records are ProcessingFailed and every other is Ok with its producer's line
    for line, record in zip(lines, response["records"], strict=True):
        if line in poison:
            assert record["result"] == "ProcessingFailed"
        else:
            assert record["result"] == "Ok"
            assert base64.b64decode(record["data"]) == line + b"\n"  # unknown fields kept


def test_a_newer_producer_s_fields_survive_in_the_archive() -> None:
    lines, _, _ = _corpus()
    (line,) = [line for line in lines if b"new_field" in line]
    event = {"records": [{"recordId": "r", "approximateArrivalTimestamp": 0, "data": base64.b64encode(line).decode()}]}
    (record,) = FirehoseTransform(MemoryObjectWriter()).transform(event).response["records"]
    archived = orjson.loads(base64.b64decode(record["data"]))
    assert archived["trace"] == {"id": "t-1"}
    assert archived["data"]["new_field"] == [1, 2]


# --------------------------------------------------------------------------- containment past validation


class _Explodes:
    """A plugin that raises on one event id, and otherwise counts: a bug in one plugin for one event."""

    name = "explodes"
    version = 1
    event_types = REGISTRY[1].event_types  # product views

    def reads(self, events: Sequence[Event]) -> Iterable[Read]:
        return ()

    def effects(self, events: Sequence[Event], context: BatchContext) -> list[list[Effect]]:
        out: list[list[Effect]] = []
        for event in events:
            if event.event_id == "edge-015":
                raise ZeroDivisionError("division by zero")
            out.append([Add("product_metrics", (("product_id", "x"), ("metric_date", "d")), {"n": 1})])
        return out


class _TooBig(_Explodes):
    name = "too_big"

    def effects(self, events: Sequence[Event], context: BatchContext) -> list[list[Effect]]:
        return [
            [Add("product_metrics", (("product_id", "x" * (3000 if e.event_id == "edge-015" else 1)), ("d", "d")), {})]
            for e in events
        ]


@pytest.mark.parametrize(
    ("plugin", "reason_part"),
    [
        pytest.param(_Explodes(), "ZeroDivisionError", id="plugin-raises"),
        pytest.param(_TooBig(), "partition key", id="effect-past-a-key-limit"),
    ],
)
def test_an_event_a_plugin_cannot_turn_into_effects_is_a_bad_row_and_the_batch_goes_on(
    plugin: Any, reason_part: str
) -> None:
    # GIVEN the valid corpus events and a plugin that cannot handle one of them
    lines, valid, _ = _corpus()
    good = [line for line in lines if any(line.startswith(orjson.dumps({"event_id": e.event_id})[:-1]) for e in valid)]
    consumer = memory_consumer()
    processor = BatchProcessor([plugin], consumer.writer, consumer.processor._context, consumer.sink)
    records = [StreamRecord(SHARD, r.sequence_number, r.data, ARRIVAL) for r in _records(good)]
    # WHEN the batch is processed
    outcome = processor.process(records)
    # THEN it succeeds, that one event is a bad row with the reason, the others are counted
    assert outcome.failed_sequence_number is None
    (row,) = consumer.sink.rows
    assert b'"edge-015"' in row.raw
    assert reason_part in row.reason
    assert outcome.events == len({e.event_id for e in valid}) - 1


def test_thousands_of_bad_lines_in_one_record_are_one_object_written_once_per_attempt() -> None:
    # GIVEN one gzip batch record of 5,000 bad lines and one good one
    from pipeline.codecs.gzipcodec import gzip_bytes

    _, valid, _ = _corpus()
    body = b"\n".join([b'{"bad": %d}' % i for i in range(5000)] + [msgspec.json.encode(valid[0])])
    consumer = memory_consumer()
    records = [StreamRecord(SHARD, f"{1:030d}", gzip_bytes(body), ARRIVAL)]
    # WHEN processed twice (a re-delivery)
    for _ in range(2):
        assert consumer.processor.process(records).failed_sequence_number is None
    # THEN one object per attempt, the same object, holding every bad line
    assert consumer.sink.puts == 2
    assert len(consumer.sink.objects) == 1
    assert len(consumer.sink.rows) == 5000


# --------------------------------------------------------------------------- arbitrary event-shaped JSON

_EDGE_NUMBERS = st.sampled_from(
    [
        "1E+200",
        "1e-400",
        "-0",
        "NaN",
        "Infinity",
        "999999999999999999.9999999999",
        "1000000000000000000",
        "0.00000000001",
        "1" * 40,
        "12,50",
        "",
    ]
)
_NUMBERS = st.one_of(
    _EDGE_NUMBERS,
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=False, allow_infinity=False),
)
_TIMES = st.one_of(
    st.sampled_from(
        [
            "9999-12-31T23:59:59-05:00",
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59Z",
            "2026-11-24T10:00:00",
            "2026-11-24 10:00:00+00:00",
            "2026-02-30T00:00:00Z",
            "yesterday",
        ]
    ),
    st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat()),
)
_TEXTS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "x" * 257, "\U0001f600" * 250, "|,=%", "x" * 9000]),
)


_OK_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12).filter(str.strip)
_OK_MONEY = st.decimals(min_value=0, max_value=10**6, places=2).map(str)
_OK_TIME = st.datetimes(  # hypothesis takes naive bounds and adds the zone itself
    min_value=datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None),
    max_value=datetime(2026, 11, 29, tzinfo=UTC).replace(tzinfo=None),
    timezones=st.just(UTC),
).map(lambda t: t.isoformat())


@st.composite
def event_shaped(draw: st.DrawFn) -> bytes:
    """An event-shaped JSON object: each value valid most of the time, else at or past a limit;
    unknown fields everywhere; a key sometimes missing. About a third of them are valid events."""

    def pick(ok: st.SearchStrategy[Any], edge: st.SearchStrategy[Any]) -> Any:
        return draw(edge) if draw(st.integers(0, 15)) == 0 else draw(ok)

    kind = pick(st.sampled_from(["order_event", "product_view", "user_activity", "system_metric"]), st.just("refund"))
    data: dict[str, Any] = {}
    if kind == "order_event":
        items = [
            {
                "product_id": pick(_OK_TEXT, _TEXTS),
                "quantity": pick(st.integers(1, 5), st.integers(-2, 10**12)),
                "price": pick(_OK_MONEY, _NUMBERS),
            }
            for _ in range(pick(st.integers(1, 3), st.integers(0, 3)))
        ]
        data = {
            "order_id": pick(_OK_TEXT, _TEXTS),
            "total_amount": pick(_OK_MONEY, _NUMBERS),
            "items": items,
            "status": pick(st.sampled_from(["pending", "complete", "Canceled", "shipped"]), _TEXTS),
        }
    elif kind == "product_view":
        data = {"product_id": pick(_OK_TEXT, _TEXTS), "session_duration": pick(st.integers(0, 10**6), st.floats())}
    elif kind == "user_activity":
        data = {"activity_type": pick(_OK_TEXT, _TEXTS), "page_url": pick(st.none() | _OK_TEXT, _TEXTS)}
    else:
        dims = pick(st.dictionaries(_OK_TEXT, _OK_TEXT, max_size=3), st.dictionaries(_TEXTS, _TEXTS, max_size=12))
        data = {"name": pick(_OK_TEXT, _TEXTS), "value": pick(_OK_MONEY, _NUMBERS), "unit": "ms", "dimensions": dims}
    doc: dict[str, Any] = {
        "event_id": pick(_OK_TEXT, _TEXTS),
        "event_type": kind,
        "schema_version": pick(st.just(1), st.sampled_from([2, "1", None])),
        "timestamp": pick(_OK_TIME, _TIMES),
        "source": pick(_OK_TEXT, _TEXTS),
        "user_id": pick(_OK_TEXT, st.none() | _TEXTS),
        "data": {**data, **draw(st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))},
        **draw(st.dictionaries(st.sampled_from(["trace", "x-new", "v2"]), st.integers(), max_size=2)),
    }
    if draw(st.integers(0, 15)) == 0:
        doc.pop(draw(st.sampled_from(sorted(doc))), None)
    return msgspec.json.encode(doc)


@given(st.lists(event_shaped(), min_size=1, max_size=12))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_the_handler_never_raises_and_every_record_is_counted_or_a_bad_row(batch: list[bytes]) -> None:
    # GIVEN any event-shaped records WHEN the handler takes them
    consumer = memory_consumer()
    records = _records(batch)
    response = consumer.handler(_lambda(records), None)
    # THEN the batch succeeds, and each record is either counted (the oracle of the valid ones) or one bad row
    assert response == {"batchItemFailures": []}
    valid: list[Event] = []
    bad: list[bytes] = []
    for line in batch:
        try:
            valid.append(decode_event(line, ARRIVAL + timedelta(days=1)))
        except EventValidationError:
            bad.append(line)
    assert sorted(row.raw for row in consumer.sink.rows) == sorted(bad)
    assert consumer.store.tables() == expected_tables(valid)
    for table in consumer.store.tables().values():
        for item in table.values():
            assert all(not isinstance(v, Decimal) or len(v.as_tuple().digits) <= 38 for v in item.values())


def _lambda(records: list[StreamRecord]) -> dict[str, Any]:

    return lambda_event(records, stream_arn)
