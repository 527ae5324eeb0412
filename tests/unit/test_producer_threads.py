"""The producer under concurrent puts, against a fake Kinesis: each event once, in key order."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline.events import Event
from pipeline.partitioning import partition_key_for
from tests.producer_harness import (
    FakeKinesis,
    fast_producer,
    fast_retry,
    ids_by_key,
    ids_of,
    random_failures,
    reference_events,
)

pytestmark = pytest.mark.library  # the embeddable library: ./dev test also runs it on 3.11 and 3.13


def test_four_threads_putting_at_once_deliver_each_event_once_in_key_order() -> None:
    # GIVEN events split by partition key among 4 threads (each key belongs to one thread), and a
    # lingering producer with a small buffer over a stream that fails 20% of entries
    events = reference_events(2_000, seed=9)
    owner: dict[str, int] = {}
    per_thread: list[list[Event]] = [[] for _ in range(4)]
    for event in events:
        key = partition_key_for(event)
        per_thread[owner.setdefault(key, len(owner) % 4)].append(event)
    kinesis = FakeKinesis()
    kinesis.fail_entry = random_failures(0.2, seed=4)
    producer = fast_producer(kinesis, linger_seconds=0.002, max_buffered_events=64, retry=fast_retry(30))
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
    assert ids_of(written) == ids_of(events)
    assert ids_by_key(written) == ids_by_key(events)
    assert producer.stats.events == len(events)
    assert producer.stats.retries > 0
