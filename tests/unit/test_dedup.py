"""Deduplication across batches: a resent event counts once within the window, whatever happens between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.codecs import RecordFormat, encode_records
from pipeline.consumer.dedup import (
    ENTRY_BYTES,
    MAX_ITEM_ENTRIES,
    DedupItem,
    EventDeduplicator,
    SeenIndex,
    entry_of,
)
from pipeline.events import EventType
from pipeline.exceptions import TransientError
from pipeline.stream import StreamRecord
from tests.consumer_harness import memory_consumer
from tools.generate import generate_events
from tools.memory import MemoryDedupStore
from tools.oracle import expected_tables

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_an_entry_is_a_digest_of_the_id_and_one_of_the_position() -> None:
    entry = entry_of("e-1", "001.000000.0000000")
    assert len(entry) == ENTRY_BYTES
    assert entry[:12] == entry_of("e-1", "002.000000.0000000")[:12]
    assert entry[12:] != entry_of("e-1", "002.000000.0000000")[12:]


def test_a_resend_in_a_later_batch_is_a_duplicate_and_a_redelivery_is_not() -> None:
    # GIVEN e-1 counted at position p1 in one batch
    dedup = EventDeduplicator(MemoryDedupStore(), HOUR)
    assert dedup.duplicates("s", [("e-1", "p1"), ("e-2", "p2")], T0) == set()
    dedup.commit("s", [("e-1", "p1"), ("e-2", "p2")], T0)
    # WHEN a later batch holds e-1 again at another position (a resend) and e-2 at its own (a retry)
    later = dedup.duplicates("s", [("e-1", "p7"), ("e-2", "p2"), ("e-3", "p8")], T0 + timedelta(minutes=5))
    # THEN only the resend is a duplicate
    assert later == {0}


def test_a_new_container_reads_the_window_from_the_store() -> None:
    store = MemoryDedupStore()
    first = EventDeduplicator(store, HOUR)
    first.duplicates("s", [("e-1", "p1")], T0)
    first.commit("s", [("e-1", "p1")], T0)
    # GIVEN a container that never saw e-1
    second = EventDeduplicator(store, HOUR)
    # WHEN e-1 is resent THEN it is known; on another shard it is not (the scope is one shard)
    assert second.duplicates("s", [("e-1", "p9")], T0 + timedelta(minutes=30)) == {0}
    assert second.duplicates("other", [("e-1", "p9")], T0 + timedelta(minutes=30)) == set()


def test_another_container_s_writes_are_seen_in_the_next_batch() -> None:
    store = MemoryDedupStore()
    a, b = EventDeduplicator(store, HOUR), EventDeduplicator(store, HOUR)
    a.duplicates("s", [("e-0", "p0")], T0)  # a has its index for shard s
    b.duplicates("s", [("e-1", "p1")], T0)
    b.commit("s", [("e-1", "p1")], T0)  # b processed the next batch of the shard
    # WHEN the shard comes back to a THEN it sees what b counted
    assert a.duplicates("s", [("e-1", "p5")], T0 + timedelta(minutes=1)) == {0}


def test_past_the_window_a_resend_counts_again() -> None:
    dedup = EventDeduplicator(MemoryDedupStore(), HOUR)
    dedup.duplicates("s", [("e-1", "p1")], T0)
    dedup.commit("s", [("e-1", "p1")], T0)
    assert dedup.duplicates("s", [("e-1", "p2")], T0 + HOUR) == {0}  # at the edge: still within
    assert dedup.duplicates("s", [("e-1", "p3")], T0 + 2 * HOUR) == set()  # well past: forgotten


def test_a_big_batch_is_stored_in_parts_under_the_item_limit() -> None:
    store = MemoryDedupStore()
    dedup = EventDeduplicator(store, HOUR)
    pairs = [(f"e-{i}", f"p{i:08d}") for i in range(MAX_ITEM_ENTRIES + 10)]
    dedup.commit("s", pairs, T0)
    assert len(store.items) == 2
    assert all(len(item.entries) <= MAX_ITEM_ENTRIES * ENTRY_BYTES for item in store.items.values())
    fresh = EventDeduplicator(store, HOUR)
    assert fresh.duplicates("s", [("e-3", "x"), (f"e-{MAX_ITEM_ENTRIES + 5}", "y")], T0) == {0, 1}


def test_the_index_forgets_its_oldest_slices_past_its_memory_cap() -> None:
    index = SeenIndex(HOUR, max_entries=2)
    for minute in range(0, 60, 15):
        index.add(
            DedupItem("s", f"k{minute:02d}", (T0 + timedelta(minutes=minute)).timestamp(), entry_of(str(minute), "p"))
        )
    index.expire((T0 + timedelta(minutes=59)).timestamp())
    assert len(index) == 2
    assert index.forgot_early_until > T0.timestamp()


def test_a_store_failure_is_transient() -> None:
    store = MemoryDedupStore()
    store.fail_next = 1
    with pytest.raises(TransientError):
        EventDeduplicator(store, HOUR).duplicates("s", [("e", "p")], T0)


def _records(data: list[bytes], start: int = 1, shard: str = "shardId-000000000000") -> list[StreamRecord]:
    return [StreamRecord(shard, f"{start + i:030d}", d, T0 + timedelta(seconds=start + i)) for i, d in enumerate(data)]


@pytest.mark.parametrize("event_type", [pytest.param(t, id=t.value) for t in EventType])
def test_every_event_type_resent_in_a_later_batch_counts_once(event_type: EventType) -> None:
    # GIVEN events of one type, processed in a first batch
    events = [e for e in generate_events(400, 5) if e.event_type is event_type][:12]
    data = [r.data for r in encode_records(events, RecordFormat.JSON)]
    consumer = memory_consumer()
    assert consumer.processor.process(_records(data)).failed_sequence_number is None
    # WHEN the producer resends every one of them in later records, after the container was replaced
    consumer.new_container()
    outcome = consumer.processor.process(_records(data, start=100))
    # THEN nothing is counted twice, and the resends are reported, not silent
    tables = consumer.store.tables()
    assert tables == expected_tables(events)
    assert outcome.resends == len(events)
    assert outcome.events == 0
