"""The archive on the emulator's S3: the local Firehose path, the reader, and ``pipeline archive``.

The property the issue asks for: any sequence of events, written through the local Firehose path (the
same transform as the Lambda, the same key layout) and read back with the reader, gives the same events.
"""

from __future__ import annotations

import base64
import gzip
import subprocess
import sys
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.archive.errors import ArchiveFormatError, TransformContractError
from pipeline.archive.layout import parse_key
from pipeline.archive.reader import iter_lines, list_objects, read_events, read_object
from pipeline.archive.transform import FirehoseTransform
from pipeline.codecs import RecordFormat, encode_event, encode_records
from pipeline.codecs.gzipcodec import gzip_bytes
from pipeline.events import (
    Event,
    EventData,
    EventType,
    OrderData,
    OrderItem,
    ProductViewData,
    SystemMetricData,
    UserActivityData,
    decode_event,
    new_event,
)
from pipeline.exceptions import TransientError
from pipeline.objectstore import S3ObjectWriter
from pipeline.partitioning import ShardMap
from pipeline.settings import Settings, aws_client
from pipeline.stream import StreamRecord, from_get_records
from tests.strategies import events
from tools.local.firehose import FirehoseSettings, LocalFirehose
from tools.local.streams import read_all

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.emulator

BIN = Path(sys.executable).parent
DAY = datetime(2026, 11, 24, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DEFAULTS = {"ArchiveBufferSizeMB": "64", "ArchiveBufferIntervalSeconds": "300"}


@pytest.fixture(scope="module")
def s3(emulator: Settings) -> S3Client:
    client: S3Client = aws_client("s3", emulator)
    return client


def _bucket(s3: S3Client) -> str:
    name = f"archive-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def bucket(s3: S3Client) -> str:
    return _bucket(s3)


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


def _activity(i: int, when: datetime, kind: EventType = EventType.USER_ACTIVITY) -> Event:
    """An event of ``kind`` (with that type's payload) at ``when``."""
    payloads: dict[EventType, EventData] = {
        EventType.USER_ACTIVITY: UserActivityData("click", None, f"s-{i % 7}"),
        EventType.ORDER_EVENT: OrderData(
            f"o-{i}", Decimal("19.99"), (OrderItem("p-1", 1, Decimal("19.99")),), "created"
        ),
        EventType.PRODUCT_VIEW: ProductViewData(f"p-{i % 5}"),
        EventType.SYSTEM_METRIC: SystemMetricData("cpu", Decimal(i % 100), "Percent", {"host": "h-1"}),
    }
    return new_event(event_id=f"a-{i:05d}", timestamp=when, source="web", data=payloads[kind], user_id=f"u-{i % 13}")


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
    bucket = _bucket(s3)
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
    batch = [_activity(i, DAY + timedelta(hours=i), list(EventType)[i % 4]) for i in range(60)]
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
    firehose.put_records(_source(list(encode_records([_activity(i, DAY) for i in range(30)], RecordFormat.JSON))))
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
    firehose.put_records(_source(list(encode_records([_activity(i, DAY) for i in range(5)], RecordFormat.JSON))))
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
    again.put_records(_source(list(encode_records([_activity(i, DAY) for i in range(5)], RecordFormat.JSON))))
    again.flush()
    assert _keys(s3, bucket) == [key]


def test_junk_goes_under_the_error_prefix_with_its_raw_bytes(s3: S3Client, bucket: str) -> None:
    # GIVEN a valid event and junk in the stream
    junk = b"\xff\xfe not an event"
    good = encode_records([_activity(1, DAY)], RecordFormat.JSON)[0]
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
    firehose.put_records(_source(list(encode_records([_activity(i, DAY) for i in range(3)], RecordFormat.JSON))))
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
        firehose.put_records(_source(list(encode_records([_activity(1, DAY)], RecordFormat.JSON))))


def test_ok_without_partition_keys_breaks_the_contract(s3: S3Client, bucket: str) -> None:
    def keyless(event: dict[str, Any]) -> dict[str, Any]:
        return {"records": [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]} for r in event["records"]]}

    with pytest.raises(TransformContractError, match="partition keys"):
        LocalFirehose(s3, bucket, keyless).put_records(
            _source(list(encode_records([_activity(1, DAY)], RecordFormat.JSON)))
        )


def test_settings_default_to_the_templates_parameters() -> None:
    assert FirehoseSettings.from_parameters(TEMPLATE_DEFAULTS) == FirehoseSettings()
    hints = FirehoseSettings.from_parameters({"ArchiveBufferSizeMB": "128", "ArchiveTransformBufferSizeMB": "0.5"})
    assert (hints.buffer_size_bytes, hints.transform_batch_bytes) == (128 * 2**20, 2**19)


# ---------------------------------------------------------------------------------------- the reader


@pytest.fixture
def archive(s3: S3Client, bucket: str) -> str:
    """Four days of two types, one object per (type, day), events written out of time order."""
    for day in range(4):
        for kind in (EventType.USER_ACTIVITY, EventType.ORDER_EVENT):
            batch = [_activity(day * 100 + i, DAY + timedelta(days=day, minutes=(7 * i) % 60), kind) for i in range(20)]
            body = b"".join(encode_event(e) + b"\n" for e in batch)
            key = f"events/event_type={kind.value}/dt={(DAY + timedelta(days=day)).date()}/obj-{day}.gz"
            s3.put_object(Bucket=bucket, Key=key, Body=gzip_bytes(body))
    s3.put_object(Bucket=bucket, Key="errors/processing-failed/2026/11/24/x.gz", Body=b"not events")
    return bucket


def test_list_objects_selects_by_type_and_date(s3: S3Client, archive: str) -> None:
    everything = list_objects(s3, archive)
    assert len(everything) == 8
    assert [o.dt for o in everything] == sorted(o.dt for o in everything)
    only = list_objects(
        s3, archive, event_type="order_event", since=DAY + timedelta(days=1), until=DAY + timedelta(days=3)
    )
    assert [(o.event_type, o.dt.day) for o in only] == [(EventType.ORDER_EVENT, 25), (EventType.ORDER_EVENT, 26)]
    # an instant inside a day selects that day's partition
    assert len(list_objects(s3, archive, since=DAY + timedelta(days=3, hours=23))) == 2


def test_read_events_filters_by_event_time_and_orders_each_object(s3: S3Client, archive: str) -> None:
    since, until = DAY + timedelta(days=1, minutes=10), DAY + timedelta(days=1, minutes=40)
    got = list(read_events(s3, archive, event_type=EventType.USER_ACTIVITY, since=since, until=until))
    assert got
    assert all(since <= e.timestamp < until for e in got)
    assert [e.timestamp for e in got] == sorted(e.timestamp for e in got)
    with pytest.raises(ValueError, match="timezone-aware"):
        list(read_events(s3, archive, since=datetime(2026, 11, 24)))  # noqa: DTZ001 - the point of the test


def test_long_objects_are_sorted_in_runs_and_merged(s3: S3Client, bucket: str) -> None:
    # GIVEN an object of 500 events in reverse time order, with equal timestamps in pairs
    batch = [_activity(i, DAY + timedelta(seconds=(500 - i) // 2)) for i in range(500)]
    s3.put_object(
        Bucket=bucket,
        Key="events/event_type=user_activity/dt=2026-11-24/big.gz",
        Body=gzip_bytes(b"\n".join(map(encode_event, batch))),
    )
    # WHEN read with runs of 37 events THEN it comes in time order, ties in the object's order
    got = list(read_events(s3, bucket, run_events=37))
    assert got == sorted(batch, key=lambda e: e.timestamp)


def test_plain_and_multi_member_gzip_objects_are_read(s3: S3Client, bucket: str) -> None:
    batch = [_activity(i, DAY + timedelta(seconds=i)) for i in range(6)]
    lines = [encode_event(e) + b"\n" for e in batch]
    prefix = "events/event_type=user_activity/dt=2026-11-24/"
    s3.put_object(Bucket=bucket, Key=prefix + "plain", Body=b"".join(lines[:3]))
    s3.put_object(Bucket=bucket, Key=prefix + "members.gz", Body=gzip_bytes(lines[3]) + gzip_bytes(b"".join(lines[4:])))
    assert sorted(e.event_id for e in read_events(s3, bucket)) == [e.event_id for e in batch]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(gzip_bytes(b'{"not": "an event"}\n'), "line 0: not an event", id="not-an-event"),
        pytest.param(gzip_bytes(b"x" * 1000)[:-12], "truncated", id="truncated-gzip"),
        pytest.param(b"\x1f\x8bnot gzip at all", "corrupt gzip", id="corrupt-gzip"),
    ],
)
def test_damage_is_reported_with_the_key(s3: S3Client, bucket: str, body: bytes, message: str) -> None:
    key = "events/event_type=user_activity/dt=2026-11-24/damaged.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    with pytest.raises(ArchiveFormatError, match=message):
        list(read_events(s3, bucket))


def test_iter_lines_inflates_in_bounded_memory() -> None:
    # GIVEN 40 MiB of NDJSON, gzipped (it compresses to a few hundred KiB), handed over in 64 KiB chunks
    line = encode_event(_activity(1, DAY)) + b"\n"
    data = gzip_bytes(line * (40 * 2**20 // len(line)))

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    # WHEN its lines are iterated THEN every line comes, and the peak of Python memory stays small
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_lines(chunks()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 40 * 2**20 // len(line)
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MiB"


# ---------------------------------------------------------------------------------------- the command


def _pipeline(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run([str(BIN / "pipeline"), *args], capture_output=True, timeout=120, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"pipeline {' '.join(args)} exited {result.returncode}: {result.stderr.decode()[-2000:]}")
    return result


def test_pipeline_archive_ls_and_cat(emulator: Settings, s3: S3Client, archive: str) -> None:
    common = ["--bucket", archive, "--endpoint-url", str(emulator.endpoint_url)]
    # WHEN listing one type over two days THEN the two objects are listed with their dates
    listed = _pipeline(
        "archive", "ls", "--type", "order_event", "--since", "2026-11-25", "--until", "2026-11-27", *common
    )
    rows = [line.split() for line in listed.stdout.decode().splitlines()]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("2026-11-25", "order_event", "events/event_type=order_event/dt=2026-11-25/obj-1.gz"),
        ("2026-11-26", "order_event", "events/event_type=order_event/dt=2026-11-26/obj-2.gz"),
    ]
    as_json = [orjson.loads(line) for line in _pipeline("archive", "ls", "--json", *common).stdout.splitlines()]
    assert {parse_key(o["key"]) is not None for o in as_json} == {True}
    assert len(as_json) == 8
    # WHEN cat-ing a time range THEN the NDJSON is the reader's events, as archived
    cat = _pipeline("archive", "cat", "--since", "2026-11-24T00:10:00Z", "--until", "2026-11-24T00:30", *common)
    expected = list(read_events(s3, archive, since=DAY + timedelta(minutes=10), until=DAY + timedelta(minutes=30)))
    assert [decode_event(line) for line in cat.stdout.splitlines()] == expected
    assert expected


def test_pipeline_archive_says_what_is_missing() -> None:
    result = _pipeline("archive", "ls", check=False)
    assert result.returncode == 2
    assert b"ARCHIVE_BUCKET" in result.stderr
    bad = _pipeline("archive", "cat", "--bucket", "b", "--since", "yesterday", check=False)
    assert bad.returncode == 2
    assert b"not an ISO 8601" in bad.stderr
    for action in ("ls", "cat"):
        text = _pipeline("archive", action, "--help").stdout
        assert b"--since" in text
        assert b"--endpoint-url" in text
