"""The producer against the embedded emulator, with faults injected through botocore hooks.

The issue's acceptance: with 30% of PutRecords entries failing per call and occasional throttling
exceptions, every event is delivered exactly once (no loss, no duplicate from the producer's own
resends) and per-key order holds, in every record format. Then the failure contract: a spent retry
budget and an error that can never succeed both raise :class:`DeliveryError` naming exactly the events
not written.

Producers here run with ``linger_seconds=0`` (no background thread): each flush is then made by the
test's own thread, so the seeded fault draws, and with them every run, are reproducible.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pytest

from pipeline.codecs import RecordFormat, decode_record
from pipeline.events import Event
from pipeline.exceptions import DecodeError, DeliveryError
from pipeline.partitioning import partition_key_for
from pipeline.retry import RetryPolicy
from pipeline.settings import Settings, aws_client
from producers import Producer
from tools.faults import FaultInjector
from tools.generate import generate_events
from tools.local.streams import read_all

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient

FORMATS = [
    pytest.param(RecordFormat.JSON, id="json"),
    pytest.param(RecordFormat.GZIP, id="gzip"),
    pytest.param(RecordFormat.GZIP_BATCH, id="gzip-batch"),
    pytest.param(RecordFormat.KPL, id="kpl"),
    pytest.param(RecordFormat.KPL_GZIP, id="kpl-gzip"),
]


def _producer_client(emulator: Settings) -> KinesisClient:
    """A kinesis client with botocore's retries off: every fault reaches the producer, which owns retries."""
    client: KinesisClient = aws_client("kinesis", emulator.with_(max_attempts=1))
    return client


def _read_back(emulator: Settings, stream: str) -> tuple[list[tuple[str, Event]], int]:
    """Every event in the stream as (shard, event), in stream order, and the number of Kinesis records.

    Stream order is by shard, then sequence number, then KPL sub-record, then line within the payload.
    Read with a client of its own, which carries no faults.
    """
    reader: KinesisClient = aws_client("kinesis", emulator)
    found: list[tuple[str, tuple[int, int, int], Event]] = []
    records = 0
    for shard_id, record in read_all(reader, stream):
        records += 1
        for result in decode_record(record["Data"], shard_id, record["SequenceNumber"]):
            assert not isinstance(result, DecodeError), repr(result)
            found.append((shard_id, result.position(), result.event))
    found.sort(key=lambda item: (item[0], item[1]))
    return [(shard, event) for shard, _, event in found], records


def _ids_by_key(events: Iterable[Event]) -> dict[str, list[str]]:
    """Each partition key's event ids, in the order given."""
    by_key: dict[str, list[str]] = defaultdict(list)
    for event in events:
        by_key[partition_key_for(event)].append(event.event_id)
    return dict(by_key)


@pytest.mark.emulator
@pytest.mark.parametrize("record_format", FORMATS)
def test_faulty_puts_deliver_every_event_exactly_once_in_key_order(
    emulator: Settings, kinesis_stream: str, record_format: RecordFormat
) -> None:
    # GIVEN a few thousand events and a producer whose client loses 30% of the entries of each
    # PutRecords call and answers 10% of calls with a throttling exception (botocore does not retry)
    events = list(generate_events(3_000, seed=7))
    kinesis = _producer_client(emulator)
    injector = FaultInjector(seed=13)
    injector.fail_put_records(kinesis, rate=0.3)
    injector.throttle(kinesis, rate=0.1)
    # A record fails a send with p ~ 0.37, so 20 attempts leave ~1e-9 of giving one up: ample budget.
    producer = Producer(
        kinesis_stream,
        kinesis,
        record_format=record_format,
        linger_seconds=0,
        max_buffered_events=200,  # many flushes: order must also hold across them
        retry=RetryPolicy(attempts=20, base_delay=0.001, max_delay=0.01),
        rng=random.Random(5),
    )

    # WHEN every event is put and the producer is closed
    with producer:
        producer.put_many(events)
    injector.detach()

    # THEN every event is in the stream exactly once
    read, records_in_stream = _read_back(emulator, kinesis_stream)
    assert Counter(event.event_id for _, event in read) == Counter(event.event_id for event in events)
    assert len(read) == len(events)

    # AND each partition key lives on one shard, where its events are in the order they were put
    shards_by_key: dict[str, set[str]] = defaultdict(set)
    for shard, event in read:
        shards_by_key[partition_key_for(event)].add(shard)
    assert all(len(shards) == 1 for shards in shards_by_key.values())
    assert _ids_by_key(event for _, event in read) == _ids_by_key(events)

    # AND faults really happened, every failed entry was resent, and the counters match the stream
    stats = producer.stats
    assert injector.counts.failed_entries > 0
    assert injector.counts.throttled_requests > 0
    assert stats.put_calls > 0
    assert stats.retries > 0
    assert stats.retries == stats.failed_entries >= injector.counts.failed_entries
    assert stats.throttled_calls == injector.counts.throttled_requests
    assert stats.events == len(events)
    assert stats.records == records_in_stream


@pytest.mark.emulator
@pytest.mark.parametrize(
    "record_format",
    [pytest.param(RecordFormat.JSON, id="json"), pytest.param(RecordFormat.KPL_GZIP, id="kpl-gzip")],
)
def test_spent_retry_budget_raises_listing_every_event_and_writes_nothing(
    emulator: Settings, kinesis_stream: str, record_format: RecordFormat
) -> None:
    # GIVEN a producer with 3 attempts per record whose client fails every PutRecords entry
    events = list(generate_events(300, seed=3))
    kinesis = _producer_client(emulator)
    FaultInjector(seed=1).fail_put_records(kinesis, rate=1.0)
    sleeps: list[float] = []
    producer = Producer(
        kinesis_stream,
        kinesis,
        record_format=record_format,
        linger_seconds=0,
        retry=RetryPolicy(attempts=3, base_delay=0.001),
        sleep=sleeps.append,
    )
    producer.put_many(events)

    # WHEN it is closed
    with pytest.raises(DeliveryError) as raised:
        producer.close()

    # THEN the error lists exactly the events sent, each once, and the stream holds nothing
    assert Counter(e.event_id for e in raised.value.undelivered) == Counter(e.event_id for e in events)
    assert _read_back(emulator, kinesis_stream) == ([], 0)

    # AND each record sent was sent exactly 3 times (resent twice), with a backoff growing between rounds;
    # later records of its key were given up unsent
    assert producer.stats.records == 0
    assert 2 * producer.stats.failed_entries == 3 * producer.stats.retries > 0
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.001
    assert 0 <= sleeps[1] <= 0.002


@pytest.mark.emulator
@pytest.mark.parametrize(
    "record_format",
    [pytest.param(RecordFormat.JSON, id="json"), pytest.param(RecordFormat.KPL, id="kpl")],
)
def test_unknown_stream_raises_at_once_listing_every_event(emulator: Settings, record_format: RecordFormat) -> None:
    # GIVEN a producer for a stream that does not exist (ResourceNotFoundException: can never succeed)
    events = list(generate_events(50, seed=4))
    kinesis = _producer_client(emulator)
    requests: list[str] = []

    def count(**kwargs: Any) -> None:
        requests.append(kwargs["event_name"])

    kinesis.meta.events.register("before-send.kinesis", count)
    sleeps: list[float] = []
    producer = Producer(
        f"missing-{uuid.uuid4().hex[:8]}",
        kinesis,
        record_format=record_format,
        linger_seconds=0,
        sleep=sleeps.append,
    )
    producer.put_many(events)

    # WHEN it is flushed
    with pytest.raises(DeliveryError) as raised:
        producer.flush()

    # THEN every event is listed, after one request and no backoff: no retry loop for a missing stream
    assert [e.event_id for e in raised.value.undelivered] == [e.event_id for e in events]
    assert len(requests) == 1
    assert sleeps == []

    # AND nothing is left buffered: close has nothing more to send or report
    producer.close()
    assert len(requests) == 1
