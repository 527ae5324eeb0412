"""The producer against an in-memory fake Kinesis: limits, ordering, failure contract, linger, threads.

No network: :class:`FakeKinesis` records every ``PutRecords`` call and writes, shard by shard, exactly
the entries it reports written, so each test can read back what a consumer would see.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from pipeline.codecs import (
    MAX_RECORDS_PER_PUT,
    MAX_REQUEST_BYTES,
    DecodedEvent,
    RecordFormat,
    decode_record,
)
from pipeline.events import Event, UserActivityData, new_event
from pipeline.exceptions import DeliveryError
from pipeline.partitioning import HASH_KEY_SPACE, ShardMap, hash_key_for, partition_key_for
from pipeline.retry import RetryPolicy
from producers import Producer
from tools.generate import generate_events

pytestmark = pytest.mark.library  # the embeddable library: ./dev test also runs it on 3.11 and 3.13

Entry = dict[str, Any]


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (fake)"}}, "PutRecords")


class FakeKinesis:
    """One stream of ``shards`` even shards, in memory. Thread-safe.

    ``fail_entry(entry)`` says whether an entry fails (``ErrorCode``, not written); ``before_write(n)``
    may return an exception to raise for call ``n`` (0-based) before anything is written, and
    ``after_write(n)`` one to raise after the call's entries were written (a response lost on the way).
    """

    def __init__(self, shards: int = 2) -> None:
        self.shard_map = ShardMap.uniform(shards)
        self.calls: list[list[Entry]] = []
        self.stream: dict[str, list[bytes]] = {shard: [] for shard in self.shard_map.shard_ids}
        self.fail_entry: Callable[[Entry], bool] = lambda entry: False
        self.before_write: Callable[[int], Exception | None] = lambda n: None
        self.after_write: Callable[[int], Exception | None] = lambda n: None
        self._lock = threading.Lock()

    def list_shards(self, **_: Any) -> dict[str, Any]:
        step = HASH_KEY_SPACE // len(self.shard_map)
        return {
            "Shards": [
                {
                    "ShardId": shard,
                    "HashKeyRange": {"StartingHashKey": str(start), "EndingHashKey": str(start + step - 1)},
                    "SequenceNumberRange": {"StartingSequenceNumber": "0"},
                }
                for start, shard in zip(self.shard_map.starts, self.shard_map.shard_ids, strict=True)
            ]
        }

    def shard_of(self, entry: Entry) -> str:
        explicit = entry.get("ExplicitHashKey")
        return self.shard_map.shard_for(int(explicit) if explicit else hash_key_for(entry["PartitionKey"]))

    def put_records(self, *, StreamName: str, Records: list[Entry]) -> dict[str, Any]:  # noqa: N803 - boto3's names
        with self._lock:
            n = len(self.calls)
            self.calls.append(list(Records))
            error = self.before_write(n)
            if error is not None:
                raise error
            results: list[dict[str, Any]] = []
            for entry in Records:
                if self.fail_entry(entry):
                    results.append({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "fake"})
                    continue
                shard = self.shard_of(entry)
                self.stream[shard].append(entry["Data"])
                results.append({"ShardId": shard, "SequenceNumber": str(len(self.stream[shard]))})
            error = self.after_write(n)
            if error is not None:
                raise error
            return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}

    def read(self) -> list[Event]:
        """Every event written, shard by shard, in stream order."""
        with self._lock:
            out: list[Event] = []
            for shard, records in self.stream.items():
                for seq, data in enumerate(records, start=1):
                    for result in decode_record(data, shard, str(seq)):
                        assert isinstance(result, DecodedEvent), repr(result)
                        out.append(result.event)
            return out


def _events(n: int, seed: int = 1) -> list[Event]:
    return list(generate_events(n, seed))


def _activity(i: int, *, url_bytes: int = 20) -> Event:
    """An event of its own user (a distinct partition key), about ``url_bytes`` bigger than the minimum
    (the url in 4-byte characters: a valid url holds at most 8,192 characters, so 32 KiB)."""
    return new_event(
        event_id=str(uuid.UUID(int=i, version=4)),
        timestamp=datetime(2026, 11, 24, 6, 0, tzinfo=UTC),
        source="web",
        data=UserActivityData(
            activity_type="page_view",
            page_url="https://shop.example.com/" + "\U0001f6d2" * (url_bytes // 4) + "x" * (url_bytes % 4),
            session_id="s-1",
        ),
        user_id=f"u-{i:06d}",
    )


def _ids(events: Iterable[Event]) -> Counter[str]:
    return Counter(event.event_id for event in events)


def _ids_by_key(events: Iterable[Event]) -> dict[str, list[str]]:
    by_key: dict[str, list[str]] = defaultdict(list)
    for event in events:
        by_key[partition_key_for(event)].append(event.event_id)
    return dict(by_key)


def _retry(attempts: int) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_delay=0.0001, max_delay=0.001)


def _producer(kinesis: FakeKinesis, **overrides: Any) -> Producer:
    """A fast producer: no linger thread, tiny backoff, seeded jitter; ``overrides`` win."""
    options: dict[str, Any] = {
        "linger_seconds": 0,
        "retry": RetryPolicy(attempts=10, base_delay=0.0001, max_delay=0.001),
        "rng": random.Random(0),
    } | overrides
    return Producer("stream", kinesis, **options)


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def _random_failures(rate: float, seed: int) -> Callable[[Entry], bool]:
    rng = random.Random(seed)  # the fake calls it under its lock
    return lambda entry: rng.random() < rate


# ---------------------------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("record_format", "make_events", "shards"),
    [
        pytest.param(RecordFormat.JSON, lambda: _events(2_000), 2, id="json-shared-keys"),
        pytest.param(RecordFormat.JSON, lambda: [_activity(i) for i in range(1_200)], 2, id="json-many-keys"),
        pytest.param(
            RecordFormat.JSON, lambda: [_activity(i, url_bytes=32_000) for i in range(300)], 2, id="json-big-events"
        ),
        pytest.param(RecordFormat.KPL, lambda: _events(2_000), 8, id="kpl-8-shards"),
        pytest.param(RecordFormat.GZIP_BATCH, lambda: _events(2_000), 8, id="gzip-batch-8-shards"),
    ],
)
def test_every_call_respects_kinesis_limits_and_carries_one_record_per_ordering_key(
    record_format: RecordFormat, make_events: Callable[[], list[Event]], shards: int
) -> None:
    # GIVEN events and a producer whose stream fails 30% of entries
    events = make_events()
    kinesis = FakeKinesis(shards)
    kinesis.fail_entry = _random_failures(0.3, seed=1)
    producer = _producer(kinesis, record_format=record_format, max_buffered_events=len(events), retry=_retry(30))

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
    assert _ids(kinesis.read()) == _ids(events)
    assert _ids_by_key(kinesis.read()) == _ids_by_key(events)


def test_the_limits_are_reached_not_just_respected() -> None:
    # GIVEN 1,200 small events of distinct keys, then 300 events of ~32 KB of distinct keys
    small = [_activity(i) for i in range(1_200)]
    big = [_activity(10_000 + i, url_bytes=32_000) for i in range(300)]

    # WHEN each set is sent in one flush by a producer over a healthy stream
    calls: list[list[Entry]] = []
    for events in (small, big):
        kinesis = FakeKinesis()
        with _producer(kinesis, max_buffered_events=len(events)) as producer:
            producer.put_many(events)
        calls.append(kinesis.calls[0])

    # THEN the first call is as full as Kinesis allows: 500 entries, or as many bytes as fit in 5 MiB
    assert len(calls[0]) == MAX_RECORDS_PER_PUT
    big_size = sum(len(e["Data"]) + len(e["PartitionKey"].encode()) for e in calls[1])
    assert MAX_REQUEST_BYTES - 41_000 < big_size <= MAX_REQUEST_BYTES


def test_flushing_twice_writes_once() -> None:
    # GIVEN a producer with buffered events
    kinesis = FakeKinesis()
    producer = _producer(kinesis)
    events = _events(100)
    producer.put_many(events)

    # WHEN it is flushed twice, then closed
    producer.flush()
    calls_after_first = len(kinesis.calls)
    producer.flush()
    producer.close()

    # THEN the second flush and the close sent nothing, and each event is in the stream once
    assert len(kinesis.calls) == calls_after_first
    assert _ids(kinesis.read()) == _ids(events)


# ------------------------------------------------------------------------------ failure contract


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(_client_error("ProvisionedThroughputExceededException"), id="throttled"),
        pytest.param(_client_error("InternalFailure"), id="internal-failure"),
        pytest.param(EndpointConnectionError(endpoint_url="http://fake"), id="endpoint-unreachable"),
        pytest.param(ConnectTimeoutError(endpoint_url="http://fake"), id="connect-timeout"),
    ],
)
def test_a_call_that_wrote_nothing_is_resent_whole_without_duplicates(error: Exception) -> None:
    # GIVEN a stream whose first two PutRecords calls fail as a whole, before writing anything
    kinesis = FakeKinesis()
    kinesis.before_write = lambda n: error if n < 2 else None
    sleeps: list[float] = []
    producer = _producer(kinesis, sleep=sleeps.append)
    events = _events(300)

    # WHEN events are sent
    producer.put_many(events)
    producer.close()

    # THEN they are delivered exactly once, in order per key, after two backoffs
    assert _ids(kinesis.read()) == _ids(events)
    assert _ids_by_key(kinesis.read()) == _ids_by_key(events)
    assert len(sleeps) == 2
    assert producer.stats.retries == len(kinesis.calls[0]) + len(kinesis.calls[1])


def test_a_record_out_of_attempts_gives_up_the_later_records_of_its_key_only() -> None:
    # GIVEN a stream that always fails the second event of the busiest partition key
    events = _events(1_000)
    by_key = _ids_by_key(events)
    busiest = max(by_key, key=lambda key: len(by_key[key]))
    assert len(by_key[busiest]) >= 3
    poisoned = by_key[busiest][1]
    kinesis = FakeKinesis()
    kinesis.fail_entry = lambda entry: poisoned.encode() in entry["Data"]
    producer = _producer(kinesis, retry=_retry(4))

    # WHEN the events are sent
    producer.put_many(events)
    with pytest.raises(DeliveryError) as raised:
        producer.close()

    # THEN the error lists that event and every later one of its key, in order, and nothing else
    assert [e.event_id for e in raised.value.undelivered] == by_key[busiest][1:]

    # AND the key's first event and every other key's events were delivered exactly once, in order
    written = kinesis.read()
    assert _ids(written) + _ids(raised.value.undelivered) == _ids(events)
    expected = {key: ids for key, ids in by_key.items() if key != busiest} | {busiest: by_key[busiest][:1]}
    assert _ids_by_key(written) == expected

    # AND the poisoned record was sent exactly max_attempts times
    assert sum(poisoned.encode() in e["Data"] for call in kinesis.calls for e in call) == 4


def test_an_error_that_can_never_succeed_also_lists_records_already_given_up() -> None:
    # GIVEN a stream that always fails one key's first event and, on the 3rd call, denies access
    events = _events(1_000)
    by_key = _ids_by_key(events)
    assert max(len(ids) for ids in by_key.values()) >= 3  # so that a 3rd call happens
    poisoned = events[0].event_id
    kinesis = FakeKinesis()
    kinesis.fail_entry = lambda entry: poisoned.encode() in entry["Data"]
    kinesis.before_write = lambda n: _client_error("AccessDeniedException") if n == 2 else None
    sleeps: list[float] = []
    producer = _producer(kinesis, retry=_retry(2), sleep=sleeps.append)

    # WHEN the events are sent
    producer.put_many(events)
    with pytest.raises(DeliveryError) as raised:
        producer.flush()

    # THEN it stops at the denied call, and the error lists every event not written: those given up
    # for running out of attempts as well as those still pending
    assert len(kinesis.calls) == 3
    undelivered = _ids(raised.value.undelivered)
    assert undelivered[poisoned] == 1
    assert _ids(kinesis.read()) + undelivered == _ids(events)
    assert isinstance(raised.value.__cause__, ClientError)


@pytest.mark.parametrize(
    ("bad", "reason_part"),
    [
        pytest.param(_activity(2, url_bytes=1_100_000), "readers accept at most", id="past-a-reader-s-limit"),
        pytest.param(
            new_event(
                event_id="late-clock",
                timestamp=datetime(2099, 1, 1, tzinfo=UTC),
                source="web",
                data=UserActivityData("page_view"),
                user_id="u-1",
            ),
            "future horizon",
            id="invalid-event",
        ),
    ],
)
def test_an_event_readers_would_refuse_is_refused_with_its_reason_and_the_rest_delivered(
    bad: Event, reason_part: str
) -> None:
    # GIVEN a buffer holding ordinary events and one event readers would turn into a bad row
    events = [_activity(1), bad, _activity(3)]
    kinesis = FakeKinesis()
    producer = _producer(kinesis)
    producer.put_many(events)
    # WHEN it is flushed
    with pytest.raises(DeliveryError) as raised:
        producer.flush()
    # THEN the others are delivered, and only the refused one is listed, with its reason
    assert _ids(kinesis.read()) == _ids([events[0], events[2]])
    assert [e.event_id for e in raised.value.undelivered] == [bad.event_id]
    assert reason_part in raised.value.reasons[bad.event_id]
    assert producer.stats.refused == 1


def test_an_ambiguous_read_timeout_is_resent_and_can_duplicate() -> None:
    # GIVEN a stream that writes the first call's entries and then loses the response (read timeout).
    # The producer cannot know whether they were written; it resends them, as its docstring says, and
    # this is the one case where the producer itself duplicates: consumers deduplicate by event_id.
    kinesis = FakeKinesis()
    kinesis.after_write = lambda n: ReadTimeoutError(endpoint_url="http://fake") if n == 0 else None
    events = _events(200)
    producer = _producer(kinesis)

    # WHEN events are sent
    producer.put_many(events)
    producer.close()

    # THEN no error is raised, every event is in the stream, and those of the first call twice
    first_call = [entry["Data"] for entry in kinesis.calls[0]]
    assert first_call
    expected = _ids(events) + Counter(e.event_id for data in first_call for e in _decode(data))
    assert _ids(kinesis.read()) == expected
    assert producer.stats.retries == len(first_call)

    # AND per-key order still holds once the duplicates are dropped (first occurrence wins)
    first_seen: dict[str, Event] = {}
    for event in kinesis.read():
        first_seen.setdefault(event.event_id, event)
    deduplicated = list(first_seen.values())
    assert _ids_by_key(deduplicated) == _ids_by_key(events)


def _decode(data: bytes) -> list[Event]:
    results = decode_record(data)
    assert all(isinstance(r, DecodedEvent) for r in results)
    return [r.event for r in results if isinstance(r, DecodedEvent)]


# -------------------------------------------------------------------------------- linger, close


def test_linger_flushes_without_an_explicit_flush() -> None:
    # GIVEN a producer that lingers 20 ms
    kinesis = FakeKinesis()
    producer = _producer(kinesis, linger_seconds=0.02)
    events = _events(50)

    # WHEN events are put and the caller just waits
    producer.put_many(events)
    _wait_until(lambda: len(kinesis.read()) == len(events))

    # THEN they were sent by the background thread
    assert _ids(kinesis.read()) == _ids(events)
    producer.close()
    assert _ids(kinesis.read()) == _ids(events)


def _wait_for_background_failure(producer: Producer) -> None:
    """Until the linger thread has stored its failure for the caller (there is no public signal)."""
    _wait_until(lambda: producer._background_error is not None)


@pytest.mark.parametrize("next_call", ["put", "flush", "close"])
def test_a_background_flush_failure_is_raised_by_the_next_call(next_call: str) -> None:
    # GIVEN a lingering producer whose stream denies access
    kinesis = FakeKinesis()
    kinesis.before_write = lambda n: _client_error("AccessDeniedException")
    producer = _producer(kinesis, linger_seconds=0.01)
    events = _events(20)

    # WHEN events are put and the background flush fails
    producer.put_many(events)
    _wait_for_background_failure(producer)

    # THEN the caller's next call raises that failure, listing the events
    more = _events(5, seed=2)
    calls: dict[str, Callable[[], None]] = {
        "put": lambda: producer.put(more[0]),
        "flush": producer.flush,
        "close": producer.close,
    }
    with pytest.raises(DeliveryError) as raised:
        calls[next_call]()
    assert _ids(raised.value.undelivered) == _ids(events)
    assert len(kinesis.calls) == 1

    # AND once raised it is not raised again: the producer closes cleanly (the put was refused)
    producer.close()


@pytest.mark.parametrize("rest_fails", [pytest.param(False, id="rest-delivered"), pytest.param(True, id="rest-fails")])
def test_close_sends_what_was_buffered_behind_a_failed_background_flush(rest_fails: bool) -> None:
    # GIVEN a lingering producer whose first background flush is held inside PutRecords, then denied
    entered, release = threading.Event(), threading.Event()

    def first_call_blocks_then_fails(n: int) -> Exception | None:
        if n == 0:
            entered.set()
            assert release.wait(5)
        return _client_error("AccessDeniedException") if n == 0 or rest_fails else None

    kinesis = FakeKinesis()
    kinesis.before_write = first_call_blocks_then_fails
    producer = _producer(kinesis, linger_seconds=0.01)
    first, second = _events(10), _events(10, seed=2)
    producer.put_many(first)
    assert entered.wait(5)
    producer.put_many(second)  # buffered while the background flush is under way
    release.set()

    # WHEN the producer is closed
    with pytest.raises(DeliveryError) as raised:
        producer.close()

    # THEN the second batch was still sent, and the error lists every event not delivered
    if rest_fails:
        assert _ids(raised.value.undelivered) == _ids(first) + _ids(second)
        assert kinesis.read() == []
    else:
        assert _ids(raised.value.undelivered) == _ids(first)
        assert _ids(kinesis.read()) == _ids(second)


def test_close_right_after_put_returns_promptly_and_delivers() -> None:
    # GIVEN a lingering producer with one event put, its linger thread already waiting to flush
    kinesis = FakeKinesis()
    producer = _producer(kinesis, linger_seconds=0.2)
    events = _events(1)
    producer.put_many(events)
    time.sleep(0.05)

    # WHEN it is closed (from a helper thread, so that a hang fails the test instead of blocking it)
    closer = threading.Thread(target=producer.close, daemon=True)
    closer.start()
    closer.join(5)

    # THEN close returned and the event was delivered
    assert not closer.is_alive()
    assert _ids(kinesis.read()) == _ids(events)


def test_context_manager_closes_and_flushes_and_refuses_puts_after() -> None:
    # GIVEN events put inside a `with` block, on a producer with a long linger
    kinesis = FakeKinesis()
    events = _events(30)
    with _producer(kinesis, linger_seconds=60) as producer:
        producer.put_many(events)
        assert kinesis.calls == []

    # THEN leaving the block flushed them
    assert _ids(kinesis.read()) == _ids(events)

    # AND a put after close is refused, and closing again is a no-op
    with pytest.raises(RuntimeError, match="closed"):
        producer.put(events[0])
    with pytest.raises(RuntimeError, match="closed"):
        producer.put_many(events)
    producer.close()
    assert _ids(kinesis.read()) == _ids(events)


# ----------------------------------------------------------------------------------------- threads


def test_four_threads_putting_at_once_deliver_each_event_once_in_key_order() -> None:
    # GIVEN events split by partition key among 4 threads (each key belongs to one thread), and a
    # lingering producer with a small buffer over a stream that fails 20% of entries
    events = _events(2_000, seed=9)
    owner: dict[str, int] = {}
    per_thread: list[list[Event]] = [[] for _ in range(4)]
    for event in events:
        key = partition_key_for(event)
        per_thread[owner.setdefault(key, len(owner) % 4)].append(event)
    kinesis = FakeKinesis()
    kinesis.fail_entry = _random_failures(0.2, seed=4)
    producer = _producer(kinesis, linger_seconds=0.002, max_buffered_events=64, retry=_retry(30))
    start = threading.Barrier(4, timeout=10)

    def publish(mine: list[Event]) -> int:
        start.wait()
        for event in mine:
            producer.put(event)
        return len(mine)

    # WHEN the 4 threads put their events one by one, interleaved, then the producer is closed
    with ThreadPoolExecutor(max_workers=4) as pool:
        put = sum(pool.map(publish, per_thread))  # re-raises any thread's error here
    producer.close()

    # THEN every event is delivered exactly once, and each key's events are in its thread's put order
    assert put == len(events)
    written = kinesis.read()
    assert _ids(written) == _ids(events)
    assert _ids_by_key(written) == _ids_by_key(events)
    assert producer.stats.events == len(events)
    assert producer.stats.retries > 0
