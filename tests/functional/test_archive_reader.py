"""The archive's read path on the emulator's S3: objects selected by type and date, events by time and in
order, damage reported with its key, bounded memory; and ``pipeline archive ls | cat``."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from pipeline.archive.errors import ArchiveFormatError
from pipeline.archive.layout import parse_key
from pipeline.archive.reader import iter_lines, list_objects, read_events
from pipeline.codecs import encode_event
from pipeline.codecs.gzipcodec import gzip_bytes
from pipeline.events import EventType, decode_event
from pipeline.settings import Settings
from tests.archive_cases import DAY, archived_event

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.emulator


BIN = Path(sys.executable).parent


# ---------------------------------------------------------------------------------------- the reader


@pytest.fixture
def archive(s3: S3Client, bucket: str) -> str:
    """Four days of two types, one object per (type, day), events written out of time order."""
    for day in range(4):
        for kind in (EventType.USER_ACTIVITY, EventType.ORDER_EVENT):
            batch = [
                archived_event(day * 100 + i, DAY + timedelta(days=day, minutes=(7 * i) % 60), kind) for i in range(20)
            ]
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
    batch = [archived_event(i, DAY + timedelta(seconds=(500 - i) // 2)) for i in range(500)]
    s3.put_object(
        Bucket=bucket,
        Key="events/event_type=user_activity/dt=2026-11-24/big.gz",
        Body=gzip_bytes(b"\n".join(map(encode_event, batch))),
    )
    # WHEN read with runs of 37 events THEN it comes in time order, ties in the object's order
    got = list(read_events(s3, bucket, run_events=37))
    assert got == sorted(batch, key=lambda e: e.timestamp)


def test_plain_and_multi_member_gzip_objects_are_read(s3: S3Client, bucket: str) -> None:
    batch = [archived_event(i, DAY + timedelta(seconds=i)) for i in range(6)]
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
    line = encode_event(archived_event(1, DAY)) + b"\n"
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
