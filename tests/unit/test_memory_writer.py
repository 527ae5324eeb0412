"""The in-memory writer (the DynamoDB writer's engine on dicts): coalescing, exactly-once through
watermarks, phases as barriers, ``failed_from``. The Lambda-like property test with crashes,
transient failures and re-deliveries is in ``test_memory_writer_delivery.py``."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from pipeline.metrics.effects import Add, Extreme, Message, PutOnce
from pipeline.metrics.flush import WriterStats
from pipeline.metrics.partials import partial_key
from pipeline.metrics.plan import ItemRef, MetricWriteError, Positioned
from tests.metric_streams import (
    SHARD,
    assert_persisted_before,
    batches,
    delivered,
    expected_messages,
    expected_tables,
    flushed,
    order_key,
    pos,
    sample_stream,
    suffix_from,
)
from tools.memory import MemoryMetricWriter, MemoryStore, SimulatedCrash


def test_coalescing_writes_each_item_once() -> None:
    # GIVEN 200 events whose effects land on 4 order items, 3 sessions and a few activity rows
    stream = sample_stream(200)
    rows = {(p.effect.table, p.effect.key) for p in stream if isinstance(p.effect, PutOnce)}
    items = {(p.effect.table, p.effect.key) for p in stream if isinstance(p.effect, Add | Extreme)}
    messages = {p.effect.dedup_id for p in stream if isinstance(p.effect, Message)}
    writer = MemoryMetricWriter(MemoryStore())

    # WHEN they are flushed at once
    result = flushed(writer, SHARD, stream)

    # THEN every item is written once, in as few calls as the batch limits allow, and values are exact
    assert result.failed_from is None
    assert result.stats.item_writes == len(rows) + len(items)
    assert result.stats.reads == len(items)  # learnt once; put-once rows are never read
    calls = math.ceil(len(rows) / 25) + math.ceil(len(items) / 100) + math.ceil(len(items) / 25)
    assert result.stats.api_calls == calls + math.ceil(len(messages) / 10)
    assert result.stats.conflicts == result.stats.retries == 0
    assert writer.store.tables() == expected_tables(stream)
    assert delivered(writer.store) == expected_messages(stream)


def test_an_empty_flush_makes_no_call() -> None:
    result = flushed(MemoryMetricWriter(MemoryStore()), SHARD, [])

    assert result.failed_from is None
    assert result.stats == WriterStats()


def test_decimal_sums_are_exact() -> None:
    # GIVEN a thousand additions of 0.10 (a float sum would drift)
    key = order_key("b")
    stream = [Positioned(pos(i), Add("order_metrics", key, {"revenue": Decimal("0.10")})) for i in range(1000)]
    writer = MemoryMetricWriter(MemoryStore())

    # WHEN flushed in four batches
    for batch in batches(stream, 250):
        assert flushed(writer, SHARD, batch).failed_from is None

    # THEN the stored sum is exactly 100.00
    assert writer.store.tables()["order_metrics"][key]["revenue"] == Decimal("100.00")


@pytest.mark.parametrize("cold", [pytest.param(False, id="same-container"), pytest.param(True, id="new-container")])
def test_flushing_twice_writes_once(cold: bool) -> None:
    # GIVEN a flushed batch
    stream = sample_stream(40)
    writer = MemoryMetricWriter(MemoryStore())
    flushed(writer, SHARD, stream)
    before = writer.store.snapshot(watermarks=True)
    if cold:
        writer.forget()

    # WHEN the same batch is flushed again
    again = flushed(writer, SHARD, stream)

    # THEN nothing changes; with a warm cache nothing is even sent
    assert again.failed_from is None
    assert writer.store.snapshot(watermarks=True) == before
    assert delivered(writer.store) == expected_messages(stream)
    if not cold:
        assert again.stats.api_calls == again.stats.item_writes == again.stats.reads == 0


@pytest.mark.parametrize("crash_after", [0, 1, 3, 7, 12])
@pytest.mark.parametrize("cold", [pytest.param(False, id="same-container"), pytest.param(True, id="new-container")])
def test_crash_in_the_middle_then_reflush_is_exact(crash_after: int, cold: bool) -> None:
    # GIVEN a writer that dies after `crash_after` item writes
    stream = sample_stream(60)
    writer = MemoryMetricWriter(MemoryStore(), crash_after_writes=crash_after)

    # WHEN the flush crashes and Lambda re-delivers the whole batch (to the same or a new container)
    with pytest.raises(SimulatedCrash):
        flushed(writer, SHARD, stream)
    if cold:
        writer.forget()
    result = flushed(writer, SHARD, stream)

    # THEN everything is counted exactly once
    assert result.failed_from is None
    assert writer.store.tables() == expected_tables(stream)
    assert delivered(writer.store) == expected_messages(stream)


@pytest.mark.parametrize(
    ("with_messages", "first_unpersisted"),
    [pytest.param(False, 2, id="the-item-s-first-event"), pytest.param(True, 0, id="an-unsent-message-before-it")],
)
def test_transient_failure_reports_the_lowest_unpersisted_position(with_messages: bool, first_unpersisted: int) -> None:
    # GIVEN one order item whose writes always fail transiently (its first event is event 2)
    stream = [p for p in sample_stream(40) if with_messages or not isinstance(p.effect, Message)]
    broken: set[ItemRef] = {("order_metrics", partial_key("order_metrics", order_key("2026-11-24#02"), SHARD))}
    store = MemoryStore()
    writer = MemoryMetricWriter(store, fails=lambda ref: ref in broken)

    # WHEN the batch is flushed
    result = flushed(writer, SHARD, stream)

    # THEN failed_from is the lowest position not persisted: that item's first event, or an earlier
    # message (phase 3 is not attempted after phase 2 failed), and every event before it is persisted
    assert result.failed_from == pos(first_unpersisted)
    assert result.stats.retries == 6  # one per round
    assert_persisted_before(store, SHARD, stream, result.failed_from)
    assert store.messages("fulfilment") == []

    # AND once the store recovers, re-delivery from failed_from makes everything exact
    broken.clear()
    assert flushed(writer, SHARD, suffix_from(stream, result.failed_from)).failed_from is None
    assert store.tables() == expected_tables(stream)
    assert delivered(store) == expected_messages(stream)


def test_failed_put_once_blocks_updates_and_messages() -> None:
    # GIVEN put-once rows that cannot be written
    stream = sample_stream(30)
    store = MemoryStore()
    failing = [True]
    writer = MemoryMetricWriter(store, fails=lambda ref: failing[0] and ref[0] == "user_activities")

    # WHEN flushed
    result = flushed(writer, SHARD, stream)

    # THEN nothing else was attempted, and failed_from is the very first position
    assert result.failed_from == pos(0)
    assert store.tables() == {}

    # AND the re-delivery is exact
    failing[0] = False
    assert flushed(writer, SHARD, stream).failed_from is None
    assert store.tables() == expected_tables(stream)


@pytest.mark.parametrize(
    "cut", [pytest.param(i, id=f"suffix-from-{i}") for i in (0, 1, 17, 39)] + [pytest.param(40, id="nothing")]
)
def test_partial_redelivery_of_a_suffix_is_exact(cut: int) -> None:
    # GIVEN a flushed batch (the writer's checkpoint was lost)
    stream = sample_stream(40)
    writer = MemoryMetricWriter(MemoryStore())
    flushed(writer, SHARD, stream)

    # WHEN a bisected or partial re-delivery flushes the events from `cut` on again, cold
    writer.forget()
    result = flushed(writer, SHARD, [p for p in stream if p.position >= pos(cut)])

    # THEN nothing is counted twice
    assert result.failed_from is None
    assert writer.store.tables() == expected_tables(stream)


def test_two_shards_on_the_same_items_add_up() -> None:
    # GIVEN two shards' streams touching the same items, with distinct values
    first, second = sample_stream(50), sample_stream(50, start=1000)
    store = MemoryStore()
    a, b = MemoryMetricWriter(store), MemoryMetricWriter(store)

    # WHEN their writers interleave batches (each one's cache goes stale on the other's writes)
    for batch_a, batch_b in zip(batches(first, 7), batches(second, 7), strict=True):
        assert flushed(a, "shardId-000000000000", batch_a).failed_from is None
        assert flushed(b, "shardId-000000000001", batch_b).failed_from is None

    # THEN both contributions are there, once each
    assert store.tables() == expected_tables(first + second)


def test_a_stale_cache_costs_a_failed_condition_not_a_double_count() -> None:
    # GIVEN container A flushed batch 1, then container B took the shard and flushed batch 2
    first, second = sample_stream(30), sample_stream(30, start=30)
    store = MemoryStore()
    a, b = MemoryMetricWriter(store), MemoryMetricWriter(store)
    flushed(a, SHARD, first)
    flushed(b, SHARD, second)

    # WHEN A gets the shard back and a re-delivery of batch 2 reaches it (A's watermarks are stale)
    result = flushed(a, SHARD, second)

    # THEN its conditional writes fail, it re-learns the items, and writes nothing twice
    assert result.failed_from is None
    assert result.stats.conflicts > 0
    assert store.tables() == expected_tables(first + second)


def test_extremes_never_move_backwards() -> None:
    # GIVEN a stored maximum of 10 (with its companion) and minimum of 3
    key = (("user_id", "u1"),)
    writer = MemoryMetricWriter(MemoryStore())
    flushed(
        writer,
        SHARD,
        [
            Positioned(pos(1), Extreme("user_sessions", key, "max", 10, companions={"who": "ten"})),
            Positioned(pos(1), Extreme("user_sessions", key, "min", 3, kind="min")),
        ],
    )

    # WHEN later events carry a lower maximum, a higher minimum and an equal maximum
    result = flushed(
        writer,
        SHARD,
        [
            Positioned(pos(2), Extreme("user_sessions", key, "max", 5, companions={"who": "five"})),
            Positioned(pos(3), Extreme("user_sessions", key, "max", 10, companions={"who": "ten again"})),
            Positioned(pos(3), Extreme("user_sessions", key, "min", 4, kind="min")),
        ],
    )

    # THEN the stored values and companions stay, and nothing was written
    assert writer.store.item("user_sessions", key) == {**dict(key), "max": 10, "who": "ten", "min": 3}
    assert result.stats.item_writes == 0


def test_put_once_first_wins() -> None:
    # GIVEN two puts of one key in a batch and a third in a later batch
    key = (("user_id", "u1"), ("timestamp", "t"))
    writer = MemoryMetricWriter(MemoryStore())
    flushed(
        writer,
        SHARD,
        [
            Positioned(pos(2), PutOnce("user_activities", key, {**dict(key), "event": "second"})),
            Positioned(pos(1), PutOnce("user_activities", key, {**dict(key), "event": "first"})),
        ],
    )
    writer.forget()

    # WHEN the later batch is flushed by a new container
    flushed(writer, SHARD, [Positioned(pos(3), PutOnce("user_activities", key, {**dict(key), "event": "third"}))])

    # THEN the first event's row is the one stored
    assert writer.store.item("user_activities", key) == {**dict(key), "event": "first"}


def test_messages_are_deduplicated() -> None:
    # GIVEN messages repeating deduplication ids, within a batch and across re-deliveries
    stream = [Positioned(pos(i), Message("fulfilment", {"n": i}, dedup_id=f"o{i % 3}", group_id="g")) for i in range(9)]
    writer = MemoryMetricWriter(MemoryStore())

    # WHEN flushed twice, the second time by a new container
    first = flushed(writer, SHARD, stream)
    writer.forget()
    flushed(writer, SHARD, stream)

    # THEN the queue holds one message per id, the first event's, sent in one call
    assert delivered(writer.store) == {"o0": {"n": 0}, "o1": {"n": 1}, "o2": {"n": 2}}
    assert (first.stats.api_calls, first.stats.messages) == (1, 3)


def test_a_message_failure_reports_its_position() -> None:
    # GIVEN a message the queue keeps refusing
    stream = sample_stream(20)
    refused = [True]
    writer = MemoryMetricWriter(MemoryStore(), fails_message=lambda m: refused[0] and m.dedup_id == "o1")

    # WHEN flushed
    result = flushed(writer, SHARD, stream)

    # THEN failed_from is that message's event (all tables are already written)
    assert result.failed_from == pos(8)
    assert_persisted_before(writer.store, SHARD, stream, pos(8))
    refused[0] = False
    assert flushed(writer, SHARD, suffix_from(stream, pos(8))).failed_from is None
    assert delivered(writer.store) == expected_messages(stream)


def test_read_returns_stored_items_and_warms_the_cache() -> None:
    # GIVEN a stored session and a writer that has never seen it
    store = MemoryStore()
    user = (("user_id", "u1"),)
    store.put("user_sessions", user, {**dict(user), "last_activity": "2026-11-24T10:00:00Z"})
    writer = MemoryMetricWriter(store)

    # WHEN the batch context reads it (and a missing user), then a flush updates it
    found = writer.read("user_sessions", [user, (("user_id", "nobody"),), user])
    result = flushed(writer, SHARD, [Positioned(pos(1), Extreme("user_sessions", user, "last_activity", "2026-11-25"))])

    # THEN only the stored item comes back, and the flush needed no read of its own
    assert found == {user: {**dict(user), "last_activity": "2026-11-24T10:00:00Z"}}
    assert (result.stats.reads, result.stats.item_writes) == (0, 1)


def test_mixed_max_and_min_on_one_attribute_is_a_bug() -> None:
    key = (("user_id", "u1"),)
    effects = [
        Positioned(pos(1), Extreme("user_sessions", key, "x", 1, kind="max")),
        Positioned(pos(2), Extreme("user_sessions", key, "x", 2, kind="min")),
    ]
    with pytest.raises(MetricWriteError, match="both max and min"):
        flushed(MemoryMetricWriter(MemoryStore()), SHARD, effects)
