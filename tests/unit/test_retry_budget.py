"""The consumer's worst case fits the function's timeout: every AWS call fails, and every call takes
as long as the clients' timeouts allow.

The consumer is the one Lambda runs (:func:`~pipeline.consumer.handler.build_consumer`, real botocore
clients). No request leaves the process: botocore hooks answer every DynamoDB call, with a throttling
error (``tools.faults``) or an empty success, and a simulated clock moves on by one call's worst
duration (the clients' connect plus read timeouts) for every call made. The writer makes its calls
one at a time here (``writer_concurrency=1``), so the simulated clock is the real order of events: a
round of many chunks then takes many calls' time, the case a once-per-round deadline check misses.
The invocation's deadline runs on that clock; the sleeps between retries are real (and short).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pipeline.codecs import RecordFormat
from pipeline.consumer.config import ConsumerConfig
from pipeline.consumer.handler import Consumer, build_consumer
from pipeline.metrics.tables import QUEUES, TABLES, Resources
from pipeline.retry import SAFETY_MARGIN_SECONDS
from pipeline.settings import Settings
from pipeline.stream import StreamRecord, lambda_event
from tests.consumer_harness import build_shards, stream_arn
from tools.faults import FaultInjector
from tools.generate import generate_events

ROOT = Path(__file__).resolve().parents[2]
CALL_SECONDS = Settings().for_lambda().call_seconds
BATCH = 1_000  # the template's largest ConsumerBatchSize
EMPTY: dict[str, dict[str, Any]] = {  # a success with nothing in it
    "Query": {"Items": [], "Count": 0, "ScannedCount": 0},
    "BatchGetItem": {"Responses": {}, "UnprocessedKeys": {}},
    "BatchWriteItem": {"UnprocessedItems": {}},
    "BatchExecuteStatement": {"Responses": []},
}
RESOURCES = Resources(
    tables={name: f"budget-{name}" for name in TABLES},
    queues={name: f"https://sqs.us-east-1.amazonaws.com/000000000000/budget-{name}.fifo" for name in QUEUES},
    bad_rows_bucket="budget-bad-rows",
)


def _timeout_seconds() -> float:
    """The consumer function's timeout: ``Globals.Function.Timeout`` of ``template.yaml``."""
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    block = text[text.index("\nGlobals:") : text.index("\nResources:")]
    found = re.search(r"\n    Timeout: (\d+)\n", block)
    assert found, "no Globals.Function.Timeout in template.yaml"
    return float(found.group(1))


class _SlowClock:
    """Monotonic time plus one worst-case call for every call made; notes when each call started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self.starts: list[float] = []

    def __call__(self) -> float:
        with self._lock:
            return time.monotonic() + self._offset

    def on_call(self, **_: Any) -> None:
        with self._lock:
            self.starts.append(time.monotonic() + self._offset)
            self._offset += CALL_SECONDS


class _Context:
    """Lambda's context: the time left until the timeout, on the simulated clock."""

    def __init__(self, clock: _SlowClock, seconds: float) -> None:
        self._clock, self.end = clock, clock() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.end - self._clock()) * 1000)


def _slow_failing_consumer(throttled: Sequence[str]) -> tuple[Consumer, _SlowClock]:
    """The production consumer; ``throttled`` DynamoDB operations always fail, the others find nothing."""
    settings = Settings(endpoint_url="http://127.0.0.1:9")
    consumer = build_consumer(settings, RESOURCES, ConsumerConfig(writer_concurrency=1), tracing=False)
    assert consumer.clients is not None
    dynamodb = consumer.clients.dynamodb
    clock = _SlowClock()
    consumer.clock = clock
    dynamodb.meta.events.register("before-sign.dynamodb", clock.on_call)  # every attempt, answered or not
    FaultInjector().throttle(dynamodb, 1.0, operations=throttled)  # attached first: answers first
    FaultInjector().stub(dynamodb, EMPTY)
    return consumer, clock


def _batch() -> list[StreamRecord]:
    (records,) = build_shards(list(generate_events(BATCH, 3)), RecordFormat.JSON, 1).values()
    return records[:BATCH]


@pytest.mark.parametrize(
    "throttled",
    [
        ["BatchExecuteStatement"],
        ["BatchGetItem"],
        ["Query"],
        ["BatchWriteItem"],
        ["BatchExecuteStatement", "BatchGetItem", "Query", "BatchWriteItem"],
    ],
    ids=["metric-writes", "reads", "dedup-reads", "dedup-writes", "everything"],
)
def test_a_batch_whose_calls_all_fail_slowly_answers_before_the_timeout(throttled: list[str]) -> None:
    # GIVEN the largest batch, and a consumer whose throttled calls all fail, each as slowly as it may
    records = _batch()
    consumer, clock = _slow_failing_consumer(throttled)
    timeout = _timeout_seconds()
    # WHEN one invocation handles it with the function's whole timeout ahead
    context = _Context(clock, timeout)
    response = consumer.handle(lambda_event(records, stream_arn), context)
    # THEN it made calls, and none that could not end the safety margin before the timeout
    assert clock.starts, "the batch made no call"
    assert max(clock.starts) + CALL_SECONDS <= context.end - SAFETY_MARGIN_SECONDS
    # AND it reports its first record, so Lambda retries the whole batch and nothing is lost
    assert response == {"batchItemFailures": [{"itemIdentifier": records[0].sequence_number}]}


def test_the_retry_policy_alone_would_not_fit_the_timeout() -> None:
    # GIVEN the same consumer, every metric write failing slowly, and no deadline (no Lambda context)
    records = _batch()
    consumer, clock = _slow_failing_consumer(["BatchExecuteStatement"])
    # WHEN it handles the batch
    started = clock()
    response = consumer.handle(lambda_event(records, stream_arn))
    # THEN it still gives up by the retry policy and reports its first record...
    assert response == {"batchItemFailures": [{"itemIdentifier": records[0].sequence_number}]}
    # ... but only after more calls than the timeout has room for: the deadline is what bounds a batch
    worst = clock() - started
    assert worst > _timeout_seconds(), f"{len(clock.starts)} calls, {worst:.0f} s"
