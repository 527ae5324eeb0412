"""The producer against a fake Kinesis: every call within Kinesis' limits, one record per ordering key
per call, the limits reached, and flushing twice writes once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pipeline.codecs import MAX_RECORDS_PER_PUT, MAX_REQUEST_BYTES, RecordFormat
from pipeline.events import Event
from tests.producer_harness import (
    Entry,
    FakeKinesis,
    fast_producer,
    fast_retry,
    ids_by_key,
    ids_of,
    random_failures,
    reference_events,
    sized_activity,
)

pytestmark = pytest.mark.library  # the embeddable library: ./dev test also runs it on 3.11 and 3.13


@pytest.mark.parametrize(
    ("record_format", "make_events", "shards"),
    [
        pytest.param(RecordFormat.JSON, lambda: reference_events(2_000), 2, id="json-shared-keys"),
        pytest.param(RecordFormat.JSON, lambda: [sized_activity(i) for i in range(1_200)], 2, id="json-many-keys"),
        pytest.param(
            RecordFormat.JSON,
            lambda: [sized_activity(i, url_bytes=32_000) for i in range(300)],
            2,
            id="json-big-events",
        ),
        pytest.param(RecordFormat.KPL, lambda: reference_events(2_000), 8, id="kpl-8-shards"),
        pytest.param(RecordFormat.GZIP_BATCH, lambda: reference_events(2_000), 8, id="gzip-batch-8-shards"),
    ],
)
def test_every_call_respects_kinesis_limits_and_carries_one_record_per_ordering_key(
    record_format: RecordFormat, make_events: Callable[[], list[Event]], shards: int
) -> None:
    # GIVEN events and a producer whose stream fails 30% of entries
    events = make_events()
    kinesis = FakeKinesis(shards)
    kinesis.fail_entry = random_failures(0.3, seed=1)
    producer = fast_producer(
        kinesis, record_format=record_format, max_buffered_events=len(events), retry=fast_retry(30)
    )

    # WHEN the events are sent in one flush
    producer.put_many(events)
    producer.close()

    # THEN no call breaks Kinesis' limits (500 entries, 5 MiB of data and partition keys) ...
    assert kinesis.calls
    for call in kinesis.calls:
        assert 1 <= len(call) <= MAX_RECORDS_PER_PUT
        assert sum(len(e["Data"]) + len(e["PartitionKey"].encode()) for e in call) <= MAX_REQUEST_BYTES
        # ... nor carries two records of one ordering key: the partition key, or for batched formats the shard
        if record_format is RecordFormat.JSON:
            keys = [entry["PartitionKey"] for entry in call]
        else:
            keys = [kinesis.shard_of(entry) for entry in call]
        assert len(keys) == len(set(keys))

    # AND everything arrived once, in order per key
    assert ids_of(kinesis.read()) == ids_of(events)
    assert ids_by_key(kinesis.read()) == ids_by_key(events)


def test_the_limits_are_reached_not_just_respected() -> None:
    # GIVEN 1,200 small events of distinct keys, then 300 events of ~32 KB of distinct keys
    small = [sized_activity(i) for i in range(1_200)]
    big = [sized_activity(10_000 + i, url_bytes=32_000) for i in range(300)]

    # WHEN each set is sent in one flush by a producer over a healthy stream
    calls: list[list[Entry]] = []
    for events in (small, big):
        kinesis = FakeKinesis()
        with fast_producer(kinesis, max_buffered_events=len(events)) as producer:
            producer.put_many(events)
        calls.append(kinesis.calls[0])

    # THEN the first call is as full as Kinesis allows: 500 entries, or as many bytes as fit in 5 MiB
    assert len(calls[0]) == MAX_RECORDS_PER_PUT
    big_size = sum(len(e["Data"]) + len(e["PartitionKey"].encode()) for e in calls[1])
    assert MAX_REQUEST_BYTES - 41_000 < big_size <= MAX_REQUEST_BYTES


def test_flushing_twice_writes_once() -> None:
    # GIVEN a producer with buffered events
    kinesis = FakeKinesis()
    producer = fast_producer(kinesis)
    events = reference_events(100)
    producer.put_many(events)

    # WHEN it is flushed twice, then closed
    producer.flush()
    calls_after_first = len(kinesis.calls)
    producer.flush()
    producer.close()

    # THEN the second flush and the close sent nothing, and each event is in the stream once
    assert len(kinesis.calls) == calls_after_first
    assert ids_of(kinesis.read()) == ids_of(events)
