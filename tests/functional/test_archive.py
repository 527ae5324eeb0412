"""The archive's write path on the emulator's S3: the local Firehose (the same transform as the Lambda,
the same key layout), its buffering and its errors. The reader and ``pipeline archive`` are in
``test_archive_reader.py``.

The property the issue asks for: any sequence of events, written through the local Firehose path and
read back with the reader, gives the same events.
"""

from __future__ import annotations

import base64
import gzip
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.archive.errors import TransformContractError
from pipeline.archive.reader import list_objects, read_events, read_object
from pipeline.archive.transform import FirehoseTransform
from pipeline.codecs import RecordFormat, encode_event, encode_records
from pipeline.events import Event, EventType
from pipeline.exceptions import TransientError
from pipeline.objectstore import S3ObjectWriter
from pipeline.partitioning import ShardMap
from pipeline.settings import Settings, aws_client
from pipeline.stream import StreamRecord, from_get_records
from tests.archive_cases import DAY, archived_event, new_bucket
from tests.strategies import events
from tools.local.firehose import FirehoseSettings, LocalFirehose
from tools.local.streams import read_all

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.emulator


TEMPLATE_DEFAULTS = {"ArchiveBufferSizeMB": "64", "ArchiveBufferIntervalSeconds": "300"}


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _source(records: list[Any], shard_arrivals: datetime = DAY) -> list[StreamRecord]:
    """Stream records as a Kinesis shard would hand them over (sequence numbers per shard)."""
    return [
        StreamRecord(r.shard_id, f"{49650000000000000000 + number}", r.data, shard_arrivals, r.partition_key)
        for number, r in enumerate(records)
    ]


def _firehose(s3: S3Client, bucket: str, **hints: Any) -> LocalFirehose:
    transform = FirehoseTransform(S3ObjectWriter(s3, bucket))
    return LocalFirehose(s3, bucket, transform, settings=FirehoseSettings(**hints), stream_name="test-archive")


def _keys(s3: S3Client, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


# ---------------------------------------------------------------------------------------- the round trip


@pytest.mark.parametrize("fmt", [pytest.param(f, id=f.value) for f in RecordFormat])
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(events(), min_size=0, max_size=40), size=st.sampled_from([300, 4096, 64 * 2**20]))
def test_any_events_written_through_the_local_firehose_read_back_the_same(
    s3: S3Client, fmt: RecordFormat, batch: list[Event], size: int
) -> None:
    # GIVEN events of any types and dates, packed in a record format on a 3-shard stream, and a fresh bucket
    bucket = new_bucket(s3)
    records = _source(list(encode_records(batch, fmt, ShardMap.uniform(3))))
    # WHEN they go through the local Firehose (small buffers write many objects) and are read back
    firehose = _firehose(s3, bucket, buffer_size_bytes=size, transform_batch_bytes=2048)
    firehose.put_records(records)
    firehose.flush()
    back = list(read_events(s3, bucket))
    # THEN the same events come back, each under its own type and date
    assert Counter(map(encode_event, back)) == Counter(map(encode_event, batch))
    for item in list_objects(s3, bucket):
        in_object = list(read_object(s3, bucket, item.key))
        assert all(
            item.partition.event_type == e.event_type and item.partition.dt == e.timestamp.date() for e in in_object
        )
        assert [e.timestamp for e in in_object] == sorted(e.timestamp for e in in_object)
    assert firehose.buffered_bytes == 0
    assert not _keys(s3, bucket, "errors/")


def test_records_read_from_a_real_stream_round_trip(
    emulator: Settings, kinesis_stream: str, bucket: str, s3: S3Client
) -> None:
    # GIVEN a mixed gzip batch, KPL records and JSON events in an emulator stream
    batch = [archived_event(i, DAY + timedelta(hours=i), list(EventType)[i % 4]) for i in range(60)]
    kinesis: KinesisClient = aws_client("kinesis", emulator)
    for fmt in (RecordFormat.GZIP_BATCH, RecordFormat.KPL, RecordFormat.JSON):
        entries = [r.to_entry() for r in encode_records(batch[:20] if fmt is RecordFormat.JSON else batch, fmt)]
        kinesis.put_records(StreamName=kinesis_stream, Records=entries)  # type: ignore[arg-type]
    # WHEN the stream's records go through the local Firehose
    firehose = _firehose(s3, bucket)
    firehose.put_records(from_get_records(shard, record) for shard, record in read_all(kinesis, kinesis_stream))
    firehose.flush()
    # THEN every event is archived, once per time it was sent
    expected = Counter(map(encode_event, batch * 2 + batch[:20]))
    assert Counter(map(encode_event, read_events(s3, bucket))) == expected
    assert firehose.stats.failed == 0


# ---------------------------------------------------------------------------------------- buffering and errors


def test_buffers_are_written_by_size_and_by_time(s3: S3Client, bucket: str) -> None:
    # GIVEN a local Firehose with a 2 KiB buffer, a 60 s interval and a fake clock
    clock = _Clock()
    firehose = LocalFirehose(
        s3,
        bucket,
        FirehoseTransform(S3ObjectWriter(s3, bucket)),
        settings=FirehoseSettings(buffer_size_bytes=2048, buffer_interval_s=60),
        clock=clock,
    )
    # WHEN 30 events of one partition arrive THEN objects of about 2 KiB are written, the rest waits
    firehose.put_records(_source(list(encode_records([archived_event(i, DAY) for i in range(30)], RecordFormat.JSON))))
    written = _keys(s3, bucket)
    assert written
    assert firehose.buffered_bytes > 0
    # WHEN less than the interval passes THEN nothing more; past it, the next call writes the rest
    clock.now = 59
    firehose.put_records([])
    assert _keys(s3, bucket) == written
    clock.now = 61
    firehose.put_records([])
    assert firehose.buffered_bytes == 0
    assert len(_keys(s3, bucket)) == len(written) + 1
    assert len(list(read_events(s3, bucket))) == 30


def test_flushing_twice_writes_once_and_a_failed_write_is_retried_under_the_same_key(s3: S3Client, bucket: str) -> None:
    # GIVEN buffered events and an S3 that fails the first write
    firehose = _firehose(s3, bucket)
    firehose.put_records(_source(list(encode_records([archived_event(i, DAY) for i in range(5)], RecordFormat.JSON))))
    failures = [1]

    def fail_once(**_: Any) -> None:
        if failures[0]:
            failures[0] -= 1
            raise TransientError("injected")

    s3.meta.events.register("before-call.s3.PutObject", fail_once)
    try:
        with pytest.raises(TransientError):
            firehose.flush()
    finally:
        s3.meta.events.unregister("before-call.s3.PutObject", fail_once)
    assert firehose.buffered_bytes > 0
    # WHEN flushed again, twice THEN one object holds the events
    assert firehose.flush() == 1
    assert firehose.flush() == 0
    (key,) = _keys(s3, bucket)
    assert len(list(read_object(s3, bucket, key))) == 5
    # AND the same input through a new local Firehose writes the same key (idempotent replays)
    again = _firehose(s3, bucket)
    again.put_records(_source(list(encode_records([archived_event(i, DAY) for i in range(5)], RecordFormat.JSON))))
    again.flush()
    assert _keys(s3, bucket) == [key]


def test_junk_goes_under_the_error_prefix_with_its_raw_bytes(s3: S3Client, bucket: str) -> None:
    # GIVEN a valid event and junk in the stream
    junk = b"\xff\xfe not an event"
    good = encode_records([archived_event(1, DAY)], RecordFormat.JSON)[0]
    firehose = _firehose(s3, bucket)
    # WHEN written through the local Firehose
    firehose.put_records([*_source([good]), StreamRecord("shardId-000000000000", "7", junk, DAY, "k")])
    firehose.flush()
    # THEN the junk is one Firehose processing-failed document under errors/, the event under events/
    (error_key,) = _keys(s3, bucket, "errors/")
    assert error_key.startswith("errors/processing-failed/2026/11/24/test-archive-1-2026-11-24-00-00-00-")
    body = s3.get_object(Bucket=bucket, Key=error_key)["Body"].read()
    (document,) = [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
    assert base64.b64decode(document["rawData"]) == junk
    assert document["errorCode"] == "Lambda.ProcessingFailedStatus"
    assert [e.event_id for e in read_events(s3, bucket)] == ["a-00001"]


def test_a_transform_that_keeps_failing_sends_its_batch_to_the_error_prefix(s3: S3Client, bucket: str) -> None:
    calls = [0]

    def broken(event: dict[str, Any]) -> dict[str, Any]:
        calls[0] += 1
        raise TransientError("throttled")

    firehose = LocalFirehose(s3, bucket, broken, settings=FirehoseSettings(retries=2))
    firehose.put_records(_source(list(encode_records([archived_event(i, DAY) for i in range(3)], RecordFormat.JSON))))
    firehose.flush()
    assert calls[0] == 3
    (key,) = _keys(s3, bucket)
    lines = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).splitlines()
    assert [orjson.loads(line)["errorCode"] for line in lines] == ["Lambda.FunctionError"] * 3


@pytest.mark.parametrize(
    "response",
    [
        pytest.param({"records": []}, id="missing-record"),
        pytest.param({"records": [{"recordId": "x", "result": "Ok", "data": ""}]}, id="unknown-record"),
        pytest.param("nope", id="not-a-response"),
    ],
)
def test_the_local_firehose_holds_the_transform_to_the_contract(s3: S3Client, bucket: str, response: Any) -> None:
    firehose = LocalFirehose(s3, bucket, lambda event: response)
    with pytest.raises(TransformContractError):
        firehose.put_records(_source(list(encode_records([archived_event(1, DAY)], RecordFormat.JSON))))


def test_ok_without_partition_keys_breaks_the_contract(s3: S3Client, bucket: str) -> None:
    def keyless(event: dict[str, Any]) -> dict[str, Any]:
        return {"records": [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]} for r in event["records"]]}

    with pytest.raises(TransformContractError, match="partition keys"):
        LocalFirehose(s3, bucket, keyless).put_records(
            _source(list(encode_records([archived_event(1, DAY)], RecordFormat.JSON)))
        )


def test_settings_default_to_the_templates_parameters() -> None:
    assert FirehoseSettings.from_parameters(TEMPLATE_DEFAULTS) == FirehoseSettings()
    hints = FirehoseSettings.from_parameters({"ArchiveBufferSizeMB": "128", "ArchiveTransformBufferSizeMB": "0.5"})
    assert (hints.buffer_size_bytes, hints.transform_batch_bytes) == (128 * 2**20, 2**19)
