"""The DynamoDB metric writer against the emulator: coalescing, exact values, exactly-once under
re-flushes, crashes, partial re-deliveries and concurrent shards. Throttling and errors are in
``test_writer_failures.py``; extremes, put-once rows and messages in ``test_writer_effects.py``."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from pipeline.metrics.effects import Add, Extreme, PutOnce
from pipeline.metrics.flush import FlushResult
from pipeline.metrics.plan import Positioned
from tests.metric_streams import SHARD, batches, expected_tables, flushed, order_key, pos, sample_stream, suffix_from
from tests.writer_stores import Stores, deliver_until_done, expected_messages_of

if TYPE_CHECKING:
    pass


pytestmark = pytest.mark.emulator


class _ContainerDiedError(Exception):
    """The container dies: raised from a botocore hook in the middle of a flush."""


def test_coalescing_writes_each_item_once_in_few_calls(stores: Stores) -> None:
    # GIVEN 400 events (about 2,000 effects) on 150 order items, 100 sessions, put-once rows, messages
    stream = sample_stream(400, items=150, users=100)
    rows = {(p.effect.table, p.effect.key) for p in stream if isinstance(p.effect, PutOnce)}
    items = {(p.effect.table, p.effect.key) for p in stream if isinstance(p.effect, Add | Extreme)}
    messages = expected_messages_of(stream)

    # WHEN they are flushed at once on empty tables
    result = flushed(stores.writer(), SHARD, stream)

    # THEN each item is written once, the calls are the batch limits' minimum, and values are exact
    assert result.failed_from is None
    assert result.stats.item_writes == len(rows) + len(items)
    assert result.stats.reads == len(items)
    calls = -(-len(rows) // 25) + -(-len(items) // 100) + -(-len(items) // 25) + -(-len(messages) // 10)
    assert result.stats.api_calls == calls
    assert (result.stats.conflicts, result.stats.retries, result.stats.messages) == (0, 0, len(messages))
    assert stores.tables() == expected_tables(stream)
    assert stores.messages() == messages


def test_decimal_sums_are_exact(stores: Stores) -> None:
    # GIVEN 600 additions of 0.10 and of 0.0000001 to one item, in three batches
    key = order_key("b")
    amounts: dict[str, int | Decimal] = {"revenue": Decimal("0.10"), "tiny": Decimal("0.0000001"), "orders": 1}
    stream = [Positioned(pos(i), Add("order_metrics", key, amounts)) for i in range(600)]
    writer = stores.writer()

    # WHEN flushed
    for batch in batches(stream, 200):
        assert flushed(writer, SHARD, batch).failed_from is None

    # THEN the sums are exact, and one write per batch did it
    item = stores.tables()["order_metrics"][key]
    assert (item["revenue"], item["tiny"], item["orders"]) == (Decimal("60.00"), Decimal("0.00006"), 600)


@pytest.mark.parametrize("cold", [pytest.param(False, id="warm-cache"), pytest.param(True, id="new-container")])
def test_flushing_twice_writes_once(stores: Stores, cold: bool) -> None:
    # GIVEN a flushed batch
    stream = sample_stream(60)
    writer = stores.writer()
    assert flushed(writer, SHARD, stream).failed_from is None
    before = stores.tables(watermarks=True)
    messages = stores.messages()

    # WHEN the same batch is flushed again
    again = flushed((stores.writer() if cold else writer), SHARD, stream)

    # THEN no item changes and no message is added; with a warm cache not a single call is made
    assert again.failed_from is None
    assert stores.tables(watermarks=True) == before
    assert stores.messages() == {}
    assert messages == expected_messages_of(stream)
    if not cold:
        assert again.stats.api_calls == again.stats.item_writes == 0


@pytest.mark.parametrize("crash_after", [0, 20, 50, 80])
def test_crash_in_the_middle_of_a_flush_then_reflush_is_exact(stores: Stores, crash_after: int) -> None:
    # GIVEN a writer whose container dies once `crash_after` statements have been sent
    stream = sample_stream(120, items=40, users=30)
    sent = [0]
    lock = threading.Lock()

    def die(params: dict[str, Any], **_: Any) -> None:
        with lock:
            if sent[0] + len(params["Statements"]) > crash_after:
                raise _ContainerDiedError(f"after {sent[0]} statements")
            sent[0] += len(params["Statements"])

    stores.dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.BatchExecuteStatement", die, unique_id="crash"
    )

    # WHEN the flush crashes, and Lambda re-delivers the batch to a new container
    with pytest.raises(_ContainerDiedError):
        flushed(stores.writer(), SHARD, stream)
    stores.dynamodb.meta.events.unregister("before-parameter-build.dynamodb.BatchExecuteStatement", unique_id="crash")
    partial = stores.tables()
    results = deliver_until_done(stores.writer(), stream)

    # THEN the crash left a part written, and the re-delivery completed it exactly once
    written = sum(len(items) for items in partial.values())
    assert written <= sent[0]
    assert (0 < written < 90) if crash_after >= 20 else written == 0
    assert len(results) == 1
    assert stores.tables() == expected_tables(stream)
    assert stores.messages() == expected_messages_of(stream)


@pytest.mark.parametrize("cut", [1, 45, 89])
def test_partial_redelivery_of_a_suffix_is_exact(stores: Stores, cut: int) -> None:
    # GIVEN a flushed batch whose checkpoint was lost
    stream = sample_stream(90)
    assert flushed(stores.writer(), SHARD, stream).failed_from is None

    # WHEN a bisected or partial re-delivery flushes the events from `cut` on again, in a new container
    result = flushed(stores.writer(), SHARD, suffix_from(stream, pos(cut)))

    # THEN nothing is counted twice, and nothing but rejected put-once inserts was even attempted
    assert result.failed_from is None
    assert stores.tables() == expected_tables(stream)


def test_two_shards_writing_the_same_items_concurrently_add_up(stores: Stores) -> None:
    # GIVEN two shards' streams on the same items (distinct extreme values), one writer per shard
    streams = {"shardId-000000000000": sample_stream(150), "shardId-000000000001": sample_stream(150, start=1000)}
    results: list[FlushResult] = []
    failures: list[BaseException] = []

    def consume(shard_id: str, stream: list[Positioned]) -> None:
        writer = stores.writer()
        try:
            results.extend(flushed(writer, shard_id, batch) for batch in batches(stream, 20))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failures.append(exc)

    # WHEN both flush their batches at the same time
    threads = [threading.Thread(target=consume, args=item) for item in streams.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN every batch is persisted and every item holds both shards' contributions once
    assert failures == []
    assert all(result.failed_from is None for result in results)
    assert stores.tables() == expected_tables([p for stream in streams.values() for p in stream])
