"""The DynamoDB metric writer against the emulator: coalescing, exact values, exactly-once under
re-flushes, crashes, partial re-deliveries, concurrent shards and throttling; extremes, put-once rows
and deduplicated messages."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from pipeline.exceptions import ConfigurationError, TransientError
from pipeline.metrics.effects import Add, Extreme, Message, PutOnce
from pipeline.metrics.flush import FlushResult
from pipeline.metrics.plan import WATERMARK_PREFIX, MetricWriteError, Positioned
from pipeline.metrics.statements import from_attribute_values
from pipeline.metrics.tables import TABLES, Resources
from pipeline.metrics.writer import DynamoMetricWriter, encode_body
from pipeline.retry import RetryPolicy
from pipeline.settings import Settings, aws_client
from tests.batch_faults import PartialBatchFailures
from tests.metric_streams import (
    SHARD,
    batches,
    expected_tables,
    flushed,
    order_key,
    pos,
    sample_stream,
    suffix_from,
)
from tests.tables import provisioned
from tools.faults import FaultInjector

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.emulator


class _ContainerDiedError(Exception):
    """The container dies: raised from a botocore hook in the middle of a flush."""


@dataclass
class Stores:
    """One test's tables and queue on the emulator, with clients that leave every retry to the writer."""

    settings: Settings
    resources: Resources
    dynamodb: DynamoDBClient
    sqs: SQSClient
    writers: list[DynamoMetricWriter] = field(default_factory=list)

    def writer(self, **options: Any) -> DynamoMetricWriter:
        """A new writer: a new container, with an empty cache."""
        options.setdefault("retry", RetryPolicy(attempts=6, base_delay=0.001, max_delay=0.01))
        writer = DynamoMetricWriter(self.dynamodb, self.sqs, self.resources, **options)
        self.writers.append(writer)
        return writer

    def tables(self, *, watermarks: bool = False) -> dict[str, dict[Any, dict[str, object]]]:
        """Every stored item as ``{table: {key: item}}`` (as the oracle's ``Tables``), without watermarks."""
        found: dict[str, dict[Any, dict[str, object]]] = {}
        for logical, physical in self.resources.tables.items():
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=physical, ConsistentRead=True):
                for raw in page["Items"]:
                    item = from_attribute_values(raw)
                    key = tuple((name, item[name]) for name in TABLES[logical].keys)
                    kept = {k: v for k, v in item.items() if watermarks or not k.startswith(WATERMARK_PREFIX)}
                    found.setdefault(logical, {})[key] = kept
        return found

    def messages(self) -> dict[str, object]:
        """Drain the fulfilment queue: body (parsed) per deduplication id."""
        url = self.resources.queues["fulfilment"]
        bodies: dict[str, object] = {}
        while True:
            page = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageSystemAttributeNames=["All"]
            )
            if not page.get("Messages"):
                return bodies
            for message in page["Messages"]:
                dedup = message["Attributes"]["MessageDeduplicationId"]
                assert dedup not in bodies, f"delivered twice: {dedup}"
                bodies[dedup] = orjson.loads(message["Body"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def stores(emulator: Settings) -> Iterator[Stores]:
    settings = emulator.with_(max_attempts=1)
    with provisioned(settings) as resources:
        found = Stores(settings, resources, aws_client("dynamodb", settings), aws_client("sqs", settings))
        yield found
        for writer in found.writers:
            writer.close()


def _expected_messages(stream: Sequence[Positioned]) -> dict[str, object]:
    bodies: dict[str, object] = {}
    for positioned in stream:
        if isinstance(positioned.effect, Message):
            bodies.setdefault(positioned.effect.dedup_id, orjson.loads(encode_body(positioned.effect)))
    return bodies


def _deliver_until_done(
    writer: DynamoMetricWriter, stream: Sequence[Positioned], attempts: int = 20
) -> list[FlushResult]:
    """Lambda with ReportBatchItemFailures: re-deliver from ``failed_from`` until everything is persisted."""
    results = [flushed(writer, SHARD, stream)]
    while results[-1].failed_from is not None:
        assert len(results) < attempts, results
        results.append(flushed(writer, SHARD, suffix_from(stream, results[-1].failed_from)))
    return results


def test_coalescing_writes_each_item_once_in_few_calls(stores: Stores) -> None:
    # GIVEN 400 events (about 2,000 effects) on 150 order items, 100 sessions, put-once rows, messages
    stream = sample_stream(400, items=150, users=100)
    rows = {(p.effect.table, p.effect.key) for p in stream if isinstance(p.effect, PutOnce)}
    items = {(p.effect.table, p.effect.key) for p in stream if isinstance(p.effect, Add | Extreme)}
    messages = _expected_messages(stream)

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
    assert messages == _expected_messages(stream)
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
    results = _deliver_until_done(stores.writer(), stream)

    # THEN the crash left a part written, and the re-delivery completed it exactly once
    written = sum(len(items) for items in partial.values())
    assert written <= sent[0]
    assert (0 < written < 90) if crash_after >= 20 else written == 0
    assert len(results) == 1
    assert stores.tables() == expected_tables(stream)
    assert stores.messages() == _expected_messages(stream)


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


def test_throttling_is_retried_and_stays_exact(stores: Stores) -> None:
    # GIVEN DynamoDB throttling 40% of the writer's calls
    stream = sample_stream(150, items=30, users=20)
    with FaultInjector(seed=7) as faults:
        faults.throttle(stores.dynamodb, 0.4, operations=["BatchExecuteStatement", "BatchGetItem"])

        # WHEN Lambda delivers the batch until the writer reports it all persisted
        results = _deliver_until_done(stores.writer(), stream)

    # THEN the throttled calls were retried, and the values are exact
    assert faults.counts.throttled_requests > 0
    assert sum(result.stats.retries for result in results) > 0
    assert stores.tables() == expected_tables(stream)
    assert stores.messages() == _expected_messages(stream)


def test_throttled_members_of_a_call_are_resent_alone(stores: Stores) -> None:
    # GIVEN 30% of the statements, keys and messages of every call failing as throttled members
    stream = sample_stream(150, items=30, users=20)
    faults = PartialBatchFailures(stores.dynamodb, stores.sqs, rate=0.3)

    # WHEN Lambda delivers the batch until the writer reports it all persisted
    try:
        results = _deliver_until_done(stores.writer(), stream)
    finally:
        faults.detach()

    # THEN only the failed members were resent, and everything is exact
    assert faults.withheld > 0
    assert sum(result.stats.retries for result in results) >= faults.withheld
    assert stores.tables() == expected_tables(stream)
    assert stores.messages() == _expected_messages(stream)


def test_when_everything_is_throttled_nothing_is_partially_counted(stores: Stores) -> None:
    # GIVEN DynamoDB throttling every call
    stream = sample_stream(40)
    with FaultInjector(seed=7) as faults:
        faults.throttle(stores.dynamodb, 1.0, operations=["BatchExecuteStatement", "BatchGetItem"])

        # WHEN the batch is flushed
        result = flushed(stores.writer(retry=RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01)), SHARD, stream)

    # THEN failed_from is the batch's first position, and nothing at all was written or sent
    assert result.failed_from == pos(0)
    assert result.stats.retries > 0
    assert stores.tables() == {}
    assert stores.messages() == {}


def test_extremes_never_move_backwards(stores: Stores) -> None:
    # GIVEN a stored maximum (with its companion) and minimum
    key = order_key("b")
    first = [
        Positioned(pos(1), Extreme("order_metrics", key, "max_total", Decimal("10.5"), companions={"who": "a"})),
        Positioned(pos(1), Extreme("order_metrics", key, "min_total", 3, kind="min")),
        Positioned(pos(1), Extreme("user_sessions", (("user_id", "u"),), "last", "2026-11-24T10:00:00Z")),
    ]
    assert flushed(stores.writer(), SHARD, first).failed_from is None

    # WHEN a new container flushes worse values, and then better ones
    worse = [
        Positioned(pos(2), Extreme("order_metrics", key, "max_total", Decimal("10.49"), companions={"who": "b"})),
        Positioned(pos(2), Extreme("order_metrics", key, "min_total", 4, kind="min")),
        Positioned(pos(2), Extreme("user_sessions", (("user_id", "u"),), "last", "2026-11-24T09:59:59Z")),
    ]
    not_written = flushed(stores.writer(), SHARD, worse)
    stored = stores.tables()
    better = [
        Positioned(pos(3), Extreme("order_metrics", key, "max_total", 11, companions={"who": "c"})),
        Positioned(pos(3), Extreme("order_metrics", key, "min_total", Decimal("2.5"), kind="min")),
    ]
    assert flushed(stores.writer(), SHARD, better).failed_from is None

    # THEN the worse values changed nothing (and were not even sent), the better ones won
    assert not_written.stats.item_writes == 0
    assert stored["order_metrics"][key] == {**dict(key), "max_total": Decimal("10.5"), "who": "a", "min_total": 3}
    assert stored["user_sessions"][(("user_id", "u"),)]["last"] == "2026-11-24T10:00:00Z"
    assert stores.tables()["order_metrics"][key] == {
        **dict(key),
        "max_total": 11,
        "who": "c",
        "min_total": Decimal("2.5"),
    }


def test_put_once_first_wins(stores: Stores) -> None:
    # GIVEN two puts of a row in one batch, the later position listed first
    key = (("user_id", "u1"), ("timestamp", "2026-11-24T10:00:00Z"))
    row = {**dict(key), "activity": "first"}
    batch = [
        Positioned(pos(2), PutOnce("user_activities", key, {**row, "activity": "second"})),
        Positioned(pos(1), PutOnce("user_activities", key, row)),
    ]
    assert flushed(stores.writer(), SHARD, batch).failed_from is None

    # WHEN a new container puts the row again
    again = flushed(
        stores.writer(), SHARD, [Positioned(pos(3), PutOnce("user_activities", key, {**row, "activity": "x"}))]
    )

    # THEN the first event's row stays: the insert was refused as a duplicate, which is success
    assert again.failed_from is None
    assert stores.tables()["user_activities"] == {key: row}


def test_messages_are_deduplicated(stores: Stores) -> None:
    # GIVEN fulfilment messages repeating deduplication ids, within a batch and across containers
    stream = [
        Positioned(pos(i), Message("fulfilment", {"n": i, "total": Decimal("9.90")}, f"o{i % 12}", f"g{i % 3}"))
        for i in range(30)
    ]

    # WHEN flushed twice, each time by a new container
    first = flushed(stores.writer(), SHARD, stream)
    second = flushed(stores.writer(), SHARD, stream)

    # THEN the queue holds each id once, with its first event's body, exact decimals as strings
    assert (first.failed_from, second.failed_from) == (None, None)
    assert (first.stats.api_calls, first.stats.messages) == (2, 12)
    assert stores.messages() == {f"o{i}": {"n": i, "total": "9.90"} for i in range(12)}


def test_read_serves_the_batch_context_through_unprocessed_keys(stores: Stores) -> None:
    # GIVEN 250 stored sessions, and 30% of the keys of every BatchGetItem left unprocessed
    users = [(("user_id", f"u{i}"),) for i in range(300)]
    stream = [Positioned(pos(i), Extreme("user_sessions", users[i], "last", f"t{i}")) for i in range(250)]
    assert flushed(stores.writer(), SHARD, stream).failed_from is None
    faults = PartialBatchFailures(stores.dynamodb, stores.sqs, rate=0.3)

    # WHEN a new container reads all 300 users
    try:
        found = stores.writer().read("user_sessions", users)
    finally:
        faults.detach()

    # THEN the 250 stored ones come back, the 50 others are simply absent
    assert faults.withheld > 0
    assert found == {users[i]: {"user_id": f"u{i}", "last": f"t{i}"} for i in range(250)}


def test_read_raises_transient_error_when_the_store_cannot_answer(stores: Stores) -> None:
    with FaultInjector(seed=1) as faults:
        faults.throttle(stores.dynamodb, 1.0, operations=["BatchGetItem"])
        with pytest.raises(TransientError, match="unread"):
            stores.writer(retry=RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.01)).read(
                "users", [(("user_id", "u1"),)]
            )


def test_a_validation_error_is_raised_not_retried(stores: Stores) -> None:
    # GIVEN an item whose counter attribute holds a string
    key = order_key("b")
    flushed(stores.writer(), SHARD, [Positioned(pos(1), PutOnce("order_metrics", key, {**dict(key), "n": "text"}))])

    # WHEN an Add targets it
    with pytest.raises(MetricWriteError, match="ValidationError"):
        flushed(stores.writer(), SHARD, [Positioned(pos(2), Add("order_metrics", key, {"n": 1}))])


def test_a_missing_table_is_a_configuration_error(stores: Stores) -> None:
    # GIVEN resources naming a table that does not exist
    missing = Resources(
        tables={**stores.resources.tables, "order_metrics": "no-such-table"}, queues=stores.resources.queues
    )
    writer = DynamoMetricWriter(stores.dynamodb, stores.sqs, missing)
    stores.writers.append(writer)

    # WHEN the writer touches it
    with pytest.raises(ConfigurationError):
        flushed(writer, SHARD, [Positioned(pos(1), Add("order_metrics", order_key("b"), {"n": 1}))])
