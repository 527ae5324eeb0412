"""Change data capture from the single table: the stream bridge on a Lambda event, then end to end on the
emulator (table stream -> poller -> bridge -> producer -> Kinesis), with crashes between the store's
commit and the publish."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.events import Event
from pipeline.exceptions import DeliveryError
from pipeline.retry import RetryPolicy
from pipeline.settings import Settings, aws_client
from pipeline.stores.cdc import StreamBridge, order_event_of
from pipeline.stores.models import OrderLine
from pipeline.stores.order_events import order_event_id
from pipeline.stores.single_table import SingleTableRepository
from producers import Producer
from tests.stores.cdc_helpers import consume, decoded, stream_records
from tests.stores.clocks import SteppingClock
from tools.faults import FaultInjector
from tools.local.stream_poller import DynamoDBStreamPoller
from tools.oracle import expected_tables

pytestmark = pytest.mark.emulator

SAMPLE = Path(__file__).resolve().parents[1] / "events" / "dynamodb_stream_orders.json"


class _Capture:
    """A publisher that keeps what it is given; fails the events whose ids are in ``refuse``."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.sent: list[Event] = []
        self._buffer: list[Event] = []
        self._refuse = refuse

    def put_many(self, events: Any) -> None:
        self._buffer += list(events)

    def flush(self) -> None:
        buffer, self._buffer = self._buffer, []
        self.sent += [e for e in buffer if e.event_id not in self._refuse]
        refused = [e for e in buffer if e.event_id in self._refuse]
        if refused:
            raise DeliveryError("refused", refused)


def _sample() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return loaded


# ---------------------------------------------------------------------------------------- the bridge alone


def test_only_order_creations_and_status_changes_become_events() -> None:
    # GIVEN a DynamoDB Streams event as the table produces it: product, order, line, stock update, status
    # change, an order update that keeps its status, a removal
    publisher = _Capture()
    # WHEN the bridge handles it
    response = StreamBridge(publisher).handle(_sample())
    # THEN it succeeds and publishes the order's creation and its payment, nothing else
    assert response == {"batchItemFailures": []}
    assert [(e.data.order_id, e.data.status) for e in publisher.sent] == [("o-1", "created"), ("o-1", "paid")]  # type: ignore[union-attr]
    created, paid = publisher.sent
    assert created.event_id == order_event_id("o-1", "created", 1)
    assert paid.event_id == order_event_id("o-1", "paid", 2)
    assert created.data.total_amount == Decimal("2.2")  # type: ignore[union-attr]
    assert [(i.product_id, i.quantity, i.price) for i in created.data.items] == [("pen", 2, Decimal("1.1"))]  # type: ignore[union-attr]
    assert created.user_id == "u-1"
    assert created.timestamp.utcoffset() is not None


def test_the_same_change_always_makes_the_same_event() -> None:
    records = _sample()["Records"]
    assert [order_event_of(r) for r in records] == [order_event_of(r) for r in records]


def test_an_undelivered_event_fails_the_batch_at_its_own_record() -> None:
    # GIVEN a publisher that cannot deliver the payment event
    records = _sample()["Records"]
    publisher = _Capture(refuse=frozenset({order_event_id("o-1", "paid", 2)}))
    # WHEN the bridge handles the batch
    response = StreamBridge(publisher).handle({"Records": records})
    # THEN Lambda is told to retry from the order's status-change record, and the creation went out
    (status_change,) = [r for r in records if (w := order_event_of(r)) and w["data"]["status"] == "paid"]
    assert response == {"batchItemFailures": [{"itemIdentifier": status_change["dynamodb"]["SequenceNumber"]}]}
    assert [e.data.status for e in publisher.sent] == ["created"]  # type: ignore[union-attr]


def test_a_poison_order_image_fails_the_batch_at_that_record_after_publishing_what_precedes_it() -> None:
    records = _sample()["Records"]
    broken = json.loads(json.dumps(records[-2]))
    broken["eventName"] = "INSERT"
    del broken["dynamodb"]["NewImage"]["total_amount"]
    publisher = _Capture()
    response = StreamBridge(publisher).handle({"Records": [*records[:-2], broken]})
    assert response == {"batchItemFailures": [{"itemIdentifier": broken["dynamodb"]["SequenceNumber"]}]}
    assert [e.data.status for e in publisher.sent] == ["created", "paid"]  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------- end to end


@dataclass
class _Pipeline:
    repo: SingleTableRepository
    kinesis: Any
    stream: str
    poller: Callable[[Callable[[dict[str, Any]], Mapping[str, Any]]], DynamoDBStreamPoller]
    bridge: StreamBridge


@pytest.fixture
def cdc(emulator: Settings, dynamodb: Any, store_table: str, kinesis_stream: str) -> Iterator[_Pipeline]:
    kinesis = aws_client("kinesis", emulator.with_(max_attempts=1))  # the producer owns retries
    arn = dynamodb.describe_table(TableName=store_table)["Table"]["LatestStreamArn"]
    streams = aws_client("dynamodbstreams", emulator)
    retry = RetryPolicy(attempts=2, base_delay=0.001)
    with Producer(kinesis_stream, kinesis, linger_seconds=0, retry=retry) as producer:
        yield _Pipeline(
            repo=SingleTableRepository(dynamodb, store_table, clock=SteppingClock()),
            kinesis=kinesis,
            stream=kinesis_stream,
            poller=lambda handler: DynamoDBStreamPoller(streams, arn, handler, batch_size=4),
            bridge=StreamBridge(producer),
        )


def _shop(repo: SingleTableRepository) -> list[tuple[str, str, int]]:
    """Orders placed and moved through statuses; the (order, status, version) of every committed change."""
    users = [repo.create_user(f"u{i}@example.com", f"u{i}").user_id for i in range(2)]
    repo.create_product("Pen", "office", Decimal("1.10"), 100, product_id="pen")
    repo.create_product("Ink", "office", Decimal("2.35"), 100, product_id="ink")
    changes = []
    for i in range(6):
        order = repo.create_order(
            users[i % 2], [OrderLine("pen", i + 1, Decimal("1.10")), OrderLine("ink", 1, Decimal("2.35"))]
        )
        changes.append((order.order_id, "created", 1))
        if i % 3 == 0:
            repo.update_order_status(order.order_id, "completed", expected_status="created")
            changes.append((order.order_id, "completed", 2))
        elif i % 3 == 1:
            repo.update_order_status(order.order_id, "paid", expected_status="created")
            repo.update_order_status(order.order_id, "cancelled", expected_status="paid")
            changes += [(order.order_id, "paid", 2), (order.order_id, "cancelled", 3)]
    return changes


def test_committed_orders_reach_the_events_stream_once_each(cdc: _Pipeline) -> None:
    # GIVEN orders placed and moved through their statuses in the store
    changes = _shop(cdc.repo)
    # WHEN the table's stream is drained through the bridge
    poller = cdc.poller(cdc.bridge.handle)
    poller.run_until_idle()
    # THEN the events stream holds exactly one event per committed change, with its deterministic id
    events = decoded(stream_records(cdc.kinesis, cdc.stream))
    assert sorted(e.event_id for e in events) == sorted(order_event_id(*c) for c in changes)
    assert poller.redeliveries == 0
    # AND each carries the order as stored
    for event in events:
        order = cdc.repo.get_order_with_items(event.data.order_id)  # type: ignore[union-attr]
        assert event.data.total_amount == order.total_amount  # type: ignore[union-attr]
        assert event.user_id == order.user_id


def _crash_after_publish(bridge: StreamBridge, crashes: int) -> Callable[[dict[str, Any]], Mapping[str, Any]]:
    """The handler publishes, then its container dies before Lambda records success (the first ``crashes``
    invocations that published something)."""
    left = [crashes]

    def handler(event: dict[str, Any]) -> Mapping[str, Any]:
        response = bridge.handle(event)
        if left[0] > 0 and any(order_event_of(record) for record in event["Records"]):
            left[0] -= 1
            raise RuntimeError("container crashed after the publish, before the checkpoint")
        return response

    return handler


def _run_with_fault(cdc: _Pipeline, fault: str) -> tuple[list[str], list[Any], DynamoDBStreamPoller]:
    """Commit order changes, poll the table's stream three times while ``fault`` lasts, then drain it.
    The expected event ids, the events stream's records, and the poller."""
    changes = _shop(cdc.repo)
    with FaultInjector(seed=7) as faults:
        handler: Callable[[dict[str, Any]], Mapping[str, Any]] = cdc.bridge.handle
        if fault == "publish-refused":
            faults.fail_put_records(cdc.kinesis, rate=1.0)
        elif fault == "partial-publish":
            faults.fail_put_records(cdc.kinesis, rate=0.5)
        else:
            handler = _crash_after_publish(cdc.bridge, crashes=3)
        poller = cdc.poller(handler)
        for _ in range(3):
            poller.poll_once()
    poller.run_until_idle()
    return sorted(order_event_id(*c) for c in changes), stream_records(cdc.kinesis, cdc.stream), poller


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("publish-refused", id="publish-refused"),
        pytest.param("partial-publish", id="partial-publish"),
        pytest.param("crash-after-publish", id="crash-after-publish"),
    ],
)
def test_a_crash_between_commit_and_publish_loses_no_event_and_replays_only_identical_ones(
    cdc: _Pipeline, fault: str
) -> None:
    # GIVEN committed order changes, and a fault between the store's commit and the publish
    # WHEN the table's stream is polled while the fault lasts, then after
    expected_ids, records, poller = _run_with_fault(cdc, fault)
    # THEN the failed invocations were re-delivered, and every change's event is on the events stream
    assert poller.redeliveries > 0
    events = decoded(records)
    assert sorted({e.event_id for e in events}) == expected_ids
    # AND any copy of an event is the same event (same id, same content): dropping repeats by id is exact
    first: dict[str, Event] = {}
    for event in events:
        assert first.setdefault(event.event_id, event) == event
    if fault == "crash-after-publish":
        assert len(events) > len(expected_ids), "the replays should be on the stream"


def test_the_consumer_counts_replayed_order_events_once(cdc: _Pipeline) -> None:
    # GIVEN the events stream after crashes that replayed published events in later records
    expected_ids, records, _ = _run_with_fault(cdc, "crash-after-publish")
    events = decoded(records)
    unique = list({e.event_id: e for e in events}.values())
    assert len(events) > len(unique) == len(expected_ids)
    # WHEN the real consumer reads it in small batches
    tables = consume(records, batch_size=2)
    # THEN every order status is counted exactly once
    oracle = expected_tables(unique)
    assert tables["order_metrics"] == oracle["order_metrics"]
    assert tables["order_claims"] == oracle["order_claims"]


def test_the_consumer_counts_events_delivered_after_refused_publishes_once(cdc: _Pipeline) -> None:
    # GIVEN the events stream after publishes that were refused outright and retried (no replay)
    expected_ids, records, _ = _run_with_fault(cdc, "publish-refused")
    events = decoded(records)
    assert sorted(e.event_id for e in events) == expected_ids
    # WHEN the real consumer reads it, THEN its order metrics are those of the committed changes
    tables = consume(records, batch_size=2)
    oracle = expected_tables(events)
    assert tables["order_metrics"] == oracle["order_metrics"]
    assert tables["order_claims"] == oracle["order_claims"]
