"""The DynamoDB metric writer against the emulator when DynamoDB fails: throttling retried and still
exact, throttled members resent alone, nothing partially counted; batch-context reads through
unprocessed keys; transient, validation and configuration errors raised as such."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pipeline.exceptions import ConfigurationError, TransientError
from pipeline.metrics.effects import Add, Extreme, PutOnce
from pipeline.metrics.partials import partial_key
from pipeline.metrics.plan import MetricWriteError, Positioned
from pipeline.metrics.tables import Resources
from pipeline.metrics.writer import DynamoMetricWriter
from pipeline.plugins.user_activity import user_key
from pipeline.retry import RetryPolicy
from tests.batch_faults import PartialBatchFailures
from tests.metric_streams import SHARD, expected_tables, flushed, order_key, pos, sample_stream
from tests.writer_stores import Stores, deliver_until_done, expected_messages_of
from tools.faults import FaultInjector

if TYPE_CHECKING:
    pass


pytestmark = pytest.mark.emulator


def test_throttling_is_retried_and_stays_exact(stores: Stores) -> None:
    # GIVEN DynamoDB throttling 40% of the writer's calls
    stream = sample_stream(150, items=30, users=20)
    with FaultInjector(seed=7) as faults:
        faults.throttle(stores.dynamodb, 0.4, operations=["BatchExecuteStatement", "BatchGetItem"])

        # WHEN Lambda delivers the batch until the writer reports it all persisted
        results = deliver_until_done(stores.writer(), stream)

    # THEN the throttled calls were retried, and the values are exact
    assert faults.counts.throttled_requests > 0
    assert sum(result.stats.retries for result in results) > 0
    assert stores.tables() == expected_tables(stream)
    assert stores.messages() == expected_messages_of(stream)


def test_throttled_members_of_a_call_are_resent_alone(stores: Stores) -> None:
    # GIVEN 30% of the statements, keys and messages of every call failing as throttled members
    stream = sample_stream(150, items=30, users=20)
    faults = PartialBatchFailures(stores.dynamodb, stores.sqs, rate=0.3)

    # WHEN Lambda delivers the batch until the writer reports it all persisted
    try:
        results = deliver_until_done(stores.writer(), stream)
    finally:
        faults.detach()

    # THEN only the failed members were resent, and everything is exact
    assert faults.withheld > 0
    assert sum(result.stats.retries for result in results) >= faults.withheld
    assert stores.tables() == expected_tables(stream)
    assert stores.messages() == expected_messages_of(stream)


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
                "store", [user_key("u1")]
            )


def test_a_validation_error_is_raised_not_retried(stores: Stores) -> None:
    # GIVEN an item (this shard's partial) whose counter attribute holds a string
    key = order_key("b")
    stored = partial_key("order_metrics", key, SHARD)
    put = PutOnce("order_metrics", stored, {**dict(stored), "n": "text"})
    flushed(stores.writer(), SHARD, [Positioned(pos(1), put)])

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
