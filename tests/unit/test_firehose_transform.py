"""The Firehose transformation, fed the event shapes AWS sends (Kinesis stream source), checked record by record.

Sample events under ``tests/events/``: ``firehose_kinesis_source_mixed.json`` (whole records: JSON, a gzip
NDJSON batch, a KPL aggregate, a gzip batch with a bad line, junk) and
``firehose_kinesis_source_kpl_deaggregated.json`` (a KPL record as Firehose hands it over, one Firehose
record per user record: a JSON event, a gzipped batch of mixed types across midnight, an invalid event).
"""

from __future__ import annotations

import base64
import gzip
import importlib
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.archive.errors import TransformContractError
from pipeline.archive.layout import Partition, parse_key
from pipeline.archive.transform import FirehoseTransform, TransformResult, archive_bucket_from_env
from pipeline.codecs import OutputRecord, RecordFormat, decode_events, encode_event, encode_records
from pipeline.events import Event, EventType, parse_event
from pipeline.exceptions import ConfigurationError, TransientError
from pipeline.partitioning import ShardMap
from tests.strategies import events
from tools.memory import MemoryObjectWriter

EVENTS = Path(__file__).resolve().parents[1] / "events"
ARRIVAL_MS = 1_795_564_799_000  # 2026-11-25T09:59:59Z
JUNK = "//4gbm90IGpzb24gYXQgYWxs"  # the mixed sample's last record


def _sample(name: str) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((EVENTS / name).read_bytes())
    return document


def _firehose_event(records: Sequence[OutputRecord], *, metadata: bool = True) -> dict[str, Any]:
    """The event Firehose sends for ``records`` read from a Kinesis stream (one shard per record's shard)."""
    out = []
    for number, record in enumerate(records):
        sequence = f"{49650000000000000000000000000000000000000000000000000000 + number}"
        entry: dict[str, Any] = {
            "recordId": f"{sequence}000000000000",
            "approximateArrivalTimestamp": ARRIVAL_MS,
            "data": base64.b64encode(record.data).decode(),
        }
        if metadata:
            entry["kinesisRecordMetadata"] = {
                "sequenceNumber": sequence,
                "subsequenceNumber": 0,
                "partitionKey": record.partition_key,
                "shardId": record.shard_id,
                "approximateArrivalTimestamp": ARRIVAL_MS,
            }
        out.append(entry)
    return {
        "invocationId": "test",
        "sourceKinesisStreamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/events",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/archive",
        "region": "us-east-1",
        "records": out,
    }


def _lines(data: bytes) -> list[Event]:
    return [parse_event(orjson.loads(line)) for line in data.splitlines()]


def _delivered(result: TransformResult, writer: MemoryObjectWriter) -> Iterator[tuple[Partition, Event]]:
    """Every event that reaches the archive: Ok data under its keys, and the transform's own objects."""
    for entry in result.response["records"]:
        if entry["result"] == "Ok":
            partition = Partition.from_keys(entry["metadata"]["partitionKeys"])
            for event in _lines(base64.b64decode(entry["data"])):
                yield partition, event
    for key, body in writer.objects.items():
        parsed = parse_key(key)
        if parsed is not None:
            for event in _lines(gzip.decompress(body)):
                yield parsed.partition, event


def _error_documents(writer: MemoryObjectWriter) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for key, body in sorted(writer.objects.items())
        if key.startswith("errors/")
        for line in gzip.decompress(body).splitlines()
    ]


# ---------------------------------------------------------------------------------------- the AWS samples


def test_the_mixed_sample_is_answered_record_by_record() -> None:
    # GIVEN the Kinesis-source sample: JSON, gzip batch, KPL aggregate, gzip batch with a bad line, junk
    event = _sample("firehose_kinesis_source_mixed.json")
    writer = MemoryObjectWriter()
    # WHEN transformed
    result = FirehoseTransform(writer).transform(event)
    records = result.response["records"]
    # THEN every recordId comes back once, in order
    assert [r["recordId"] for r in records] == [r["recordId"] for r in event["records"]]
    json_record, gzip_batch, kpl, partial, junk = records
    # AND the JSON event is Ok under its type and UTC date, as the line its producer wrote
    assert json_record["result"] == "Ok"
    assert json_record["metadata"]["partitionKeys"] == {"event_type": "product_view", "dt": "2026-11-24"}
    raw = base64.b64decode(event["records"][0]["data"])
    assert base64.b64decode(json_record["data"]) == raw.strip() + b"\n"
    assert decode_events(raw)
    assert gzip_batch["result"] == "Ok"
    assert gzip_batch["metadata"]["partitionKeys"] == {"event_type": "system_metric", "dt": "2026-11-24"}
    # AND the KPL aggregate of two product views and an order keeps the views, the order is split off
    assert kpl["result"] == "Ok"
    assert kpl["metadata"]["partitionKeys"] == {"event_type": "product_view", "dt": "2026-11-24"}
    assert [e.event_type for e in _lines(base64.b64decode(kpl["data"]))] == [EventType.PRODUCT_VIEW] * 2
    split = "split-shardId-000000000001-49590000000000000000000000000000000000000000000000000002-0.gz"
    order_key = f"events/event_type=order_event/dt=2026-11-24/{split}"
    assert [e.event_type for e in _lines(gzip.decompress(writer.objects[order_key]))] == [EventType.ORDER_EVENT]
    # AND the batch with a bad line delivers its good event and keeps the bad line under the error prefix
    assert partial["result"] == "Ok"
    (document,) = _error_documents(writer)
    assert document["errorCode"] == "Transform.PartialDecodeError"
    assert document["sequenceNumber"] == event["records"][3]["kinesisRecordMetadata"]["sequenceNumber"]
    assert document["line"] is not None
    assert base64.b64decode(document["rawData"]) == b'{"event_type":"order_event","schema_version":1}'  # the bad line
    # AND junk is ProcessingFailed with its bytes echoed, for Firehose's error prefix
    assert junk == {
        "recordId": event["records"][4]["recordId"],
        "result": "ProcessingFailed",
        "data": "//4gbm90IGpzb24gYXQgYWxs",
    }
    assert set(writer.objects) == {order_key, f"errors/processing-failed/2026/11/24/{split.replace('02-0', '03-0')}"}
    assert result.stats.as_dict() | {"reasons": []} == {
        "records": 5,
        "ok": 4,
        "dropped": 0,
        "failed": 1,
        "events": 6,
        "mixed_records": 1,
        "split_objects": 2,
        "error_parts": 1,
        "response_bytes": result.stats.response_bytes,
        "reasons": [],
    }


def test_kpl_user_records_as_firehose_deaggregates_them() -> None:
    # GIVEN one KPL record as Firehose hands it over: three user records of one sequence number
    event = _sample("firehose_kinesis_source_kpl_deaggregated.json")
    writer = MemoryObjectWriter()
    # WHEN transformed
    records = FirehoseTransform(writer).transform(event).response["records"]
    view, batch, invalid = records
    # THEN the JSON user record is Ok on its own date (23:59:58 UTC on the 24th)
    assert view["metadata"]["partitionKeys"] == {"event_type": "product_view", "dt": "2026-11-24"}
    # AND the gzipped batch keeps its largest group (two activities on the 24th) in Firehose's data
    assert batch["result"] == "Ok"
    assert batch["metadata"]["partitionKeys"] == {"event_type": "user_activity", "dt": "2026-11-24"}
    assert [e.event_id for e in _lines(base64.b64decode(batch["data"]))] == ["kpl-0002", "kpl-0005"]
    # AND each other (type, date) group lands under its own prefix, named after the user record's position
    name = "split-shardId-000000000003-49650000000000000000000000000000000000000000000000000042-1.gz"
    assert {k: [e.event_id for e in _lines(gzip.decompress(v))] for k, v in writer.objects.items()} == {
        f"events/event_type=order_event/dt=2026-11-25/{name}": ["kpl-0003"],
        f"events/event_type=user_activity/dt=2026-11-25/{name}": ["kpl-0004"],
    }
    # AND the invalid event fails, echoing its data
    assert invalid["result"] == "ProcessingFailed"
    assert invalid["data"] == event["records"][2]["data"]


# ---------------------------------------------------------------------------------------- every format


@pytest.mark.parametrize("fmt", [pytest.param(f, id=f.value) for f in RecordFormat])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(events(), min_size=1, max_size=30))
def test_every_event_lands_once_under_its_own_type_and_date(fmt: RecordFormat, batch: list[Event]) -> None:
    # GIVEN events of mixed types and dates packed in a record format, read from a 2-shard stream
    records = encode_records(batch, fmt, ShardMap.uniform(2))
    writer = MemoryObjectWriter()
    # WHEN Firehose hands the records to the transform
    result = FirehoseTransform(writer).transform(_firehose_event(records))
    # THEN every record is Ok, and every event reaches the archive exactly once, under its own partition
    assert {r["result"] for r in result.response["records"]} == {"Ok"}
    delivered = list(_delivered(result, writer))
    assert Counter(encode_event(event) for _, event in delivered) == Counter(map(encode_event, batch))
    assert all(partition == Partition.of(event) for partition, event in delivered)
    # AND transforming the same records again (a retry) writes the same objects, byte for byte
    again = MemoryObjectWriter()
    assert FirehoseTransform(again).transform(_firehose_event(records)).response == result.response
    assert again.objects == writer.objects


def test_a_uniform_record_is_returned_whole_and_writes_nothing_itself() -> None:
    # GIVEN a gzip batch of events of one type and one date
    day = datetime(2026, 11, 24, 10, tzinfo=UTC)
    batch = [_activity(i, day) for i in range(50)]
    (record,) = encode_records(batch, RecordFormat.GZIP_BATCH)
    writer = MemoryObjectWriter()
    # WHEN transformed THEN it is one Ok record holding every event in order, and nothing is split
    (entry,) = FirehoseTransform(writer).transform(_firehose_event([record])).response["records"]
    assert _lines(base64.b64decode(entry["data"])) == batch
    assert writer.puts == 0


def _activity(i: int, when: datetime) -> Event:
    from pipeline.events import UserActivityData, new_event

    return new_event(event_id=f"a-{i}", timestamp=when, source="web", data=UserActivityData("click"), user_id=f"u-{i}")


# ---------------------------------------------------------------------------------------- limits and failures


def test_records_past_the_response_budget_are_written_by_the_transform_and_dropped() -> None:
    # GIVEN ten single-type batches, and a response budget that holds about three of them
    day = datetime(2026, 11, 24, tzinfo=UTC)
    records = [
        encode_records([_activity(i * 100 + j, day) for j in range(40)], RecordFormat.GZIP_BATCH)[0] for i in range(10)
    ]
    writer = MemoryObjectWriter()
    budget = 3 * len(base64.b64encode(b"".join(encode_event(_activity(j, day)) + b"\n" for j in range(40)))) + 2000
    # WHEN transformed
    result = FirehoseTransform(writer, max_response_bytes=budget).transform(_firehose_event(records))
    # THEN the response fits the budget, the rest is Dropped with empty data, and no event is lost
    results = [r["result"] for r in result.response["records"]]
    assert results.count("Ok") == 3
    assert results.count("Dropped") == 7
    assert len(orjson.dumps(result.response)) <= budget
    assert all(r["data"] == "" for r in result.response["records"] if r["result"] == "Dropped")
    assert len(list(_delivered(result, writer))) == 400


def test_a_failed_record_past_the_budget_is_kept_under_the_error_prefix() -> None:
    # GIVEN junk that cannot even be echoed within the budget
    junk = OutputRecord("k", None, b"\x00" * 5000, "shardId-000000000000", ())
    writer = MemoryObjectWriter()
    # WHEN transformed THEN it is Dropped and its bytes are in an error document the transform wrote
    (entry,) = FirehoseTransform(writer, max_response_bytes=1000).transform(_firehose_event([junk])).response["records"]
    assert entry["result"] == "Dropped"
    (document,) = _error_documents(writer)
    assert base64.b64decode(document["rawData"]) == junk.data
    assert document["errorCode"] == "Transform.DecodeError"


def test_a_failed_own_write_fails_the_invocation_and_the_retry_writes_the_same_objects() -> None:
    # GIVEN a mixed batch and a writer that fails once
    day = datetime(2026, 11, 24, tzinfo=UTC)
    batch = [_activity(1, day), _activity(2, day.replace(day=25))]
    event = _firehose_event(encode_records(batch, RecordFormat.GZIP_BATCH))
    writer = MemoryObjectWriter()
    writer.fail_next = 1
    transform = FirehoseTransform(writer)
    # WHEN Firehose invokes it THEN the invocation fails (Firehose retries it), having written nothing
    with pytest.raises(TransientError):
        transform.transform(event)
    assert writer.objects == {}
    # WHEN retried THEN it succeeds; a third time rewrites the same key with the same bytes
    first = transform.transform(event)
    snapshot = dict(writer.objects)
    assert transform.transform(event).response == first.response
    assert writer.objects == snapshot
    assert len(snapshot) == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param("not base64!", "not base64", id="not-base64"),
        pytest.param(base64.b64encode(b"").decode(), "empty record", id="empty"),
        pytest.param(base64.b64encode(b"\x1f\x8b\x08garbage").decode(), "gzip", id="bad-gzip"),
        pytest.param(base64.b64encode(b"\xf3\x89\x9a\xc2" + b"\x00" * 20).decode(), "KPL", id="bad-kpl"),
        pytest.param(base64.b64encode(b'{"event_type":"order_event"}').decode(), "invalid event", id="invalid-event"),
    ],
)
def test_undecodable_records_are_processing_failed_and_say_why(data: str, reason: str) -> None:
    event = {"records": [{"recordId": "r1", "approximateArrivalTimestamp": ARRIVAL_MS, "data": data}]}
    result = FirehoseTransform(MemoryObjectWriter()).transform(event)
    assert result.response == {"records": [{"recordId": "r1", "result": "ProcessingFailed", "data": data}]}
    assert reason in " ".join(result.stats.reasons)


def test_without_kinesis_metadata_the_split_objects_are_named_after_the_record_id() -> None:
    # GIVEN a mixed record as the emulator's Firehose (or Direct PUT) sends it: no kinesisRecordMetadata
    day = datetime(2026, 11, 24, tzinfo=UTC)
    records = encode_records([_activity(1, day), _activity(2, day.replace(day=25))], RecordFormat.GZIP_BATCH)
    writer = MemoryObjectWriter()
    FirehoseTransform(writer).transform(_firehose_event(records, metadata=False))
    (key,) = writer.objects
    record_id = _firehose_event(records)["records"][0]["recordId"]
    assert key == f"events/event_type=user_activity/dt=2026-11-25/split-{record_id}.gz"


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({}, id="no-records"),
        pytest.param({"records": [{"data": ""}]}, id="no-record-id"),
        pytest.param({"records": ["x"]}, id="not-an-object"),
    ],
)
def test_an_event_that_is_not_a_firehose_event_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(TransformContractError):
        FirehoseTransform(MemoryObjectWriter()).transform(event)


def test_an_empty_invocation_answers_no_records() -> None:
    assert FirehoseTransform(MemoryObjectWriter())({"records": []}) == {"records": []}


# ---------------------------------------------------------------------------------------- the handler


class _Context:
    function_name = "event-pipeline-test-archive-transform"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:event-pipeline-test-archive-transform"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_the_handler_answers_the_sample_with_the_core_response(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the handler module loaded with the template's environment (no endpoint: no call is made)
    monkeypatch.setenv("ARCHIVE_BUCKET", "archive-bucket")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "EventPipeline")
    sys.modules.pop("consumers.firehose_transform", None)
    module = importlib.import_module("consumers.firehose_transform")
    event = _sample("firehose_kinesis_source_kpl_deaggregated.json")
    written = MemoryObjectWriter()
    monkeypatch.setattr(module, "transform", FirehoseTransform(written))
    # WHEN invoked THEN it returns what the core returns for the same event
    assert module.handler(event, _Context()) == FirehoseTransform(MemoryObjectWriter())(event)
    assert len(written.objects) == 2


def test_the_transform_needs_its_bucket() -> None:
    assert archive_bucket_from_env({"ARCHIVE_BUCKET": "b"}) == "b"
    with pytest.raises(ConfigurationError, match="ARCHIVE_BUCKET"):
        archive_bucket_from_env({})
