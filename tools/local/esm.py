"""A reference model of Lambda's Kinesis event source mapping, for one shard.

It invokes the real handler with the real Lambda event shape and applies the documented semantics:

- batches of up to ``batch_size`` records from the checkpoint, in sequence order;
- ``ReportBatchItemFailures``: an empty (or null) ``batchItemFailures`` is complete success; otherwise
  the checkpoint moves to just before the lowest reported sequence number and the batch is retried
  from that record. An empty, null or unknown ``itemIdentifier`` is a complete failure;
- a function error (exception, timeout) or a complete failure is retried; with
  ``bisect_on_error`` a failing batch of more than one record is split in two halves, retried in
  order (splitting does not use up a retry); a partial failure is not bisected: the batch restarts
  at the reported record;
- ``maximum_retry_attempts`` (-1: until the record expires) counts failed invocations of the batch
  starting at a record; when exhausted, or when the first record is older than
  ``maximum_record_age_s``, the batch's metadata goes to the on-failure destination and the
  checkpoint moves past it;
- ``retry_delay(n)`` seconds pass before the ``n``-th retry of a failed batch (default: none). Lambda
  does not document how it spaces retries; with none, ten retries take milliseconds, so an outage of
  the stores longer than that exhausts ``maximum_retry_attempts`` at once and discards records;
- at-least-once: ``redeliver`` may ask for a successfully processed batch to be delivered again
  (what Lambda does after an invocation times out although the function finished).

Used by tests to drive the handler under faults, and by the local runtime to run the consumer.
Not thread-safe: one driver per shard, as Lambda runs one batch per shard at a time
(ParallelizationFactor 1).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.stream import StreamRecord, lambda_event

__all__ = ["EsmSettings", "EsmStats", "FakeLambdaContext", "ShardDriver"]

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True, slots=True)
class EsmSettings:
    """The event source mapping settings the template declares (same names, same defaults as AWS)."""

    batch_size: int = 100
    maximum_batching_window_s: float = 0.0
    bisect_on_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_s: int = -1
    report_batch_item_failures: bool = True


@dataclass(slots=True)
class EsmStats:
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    bisections: int = 0
    redeliveries: int = 0
    discarded_batches: int = 0
    discarded_records: int = 0
    records_delivered: int = 0


@dataclass(slots=True)
class FakeLambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str = "consumer"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:consumer"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/consumer"
    log_stream_name: str = "local"
    timeout_s: float = 120.0
    """The template's function timeout (``Globals.Function.Timeout``)."""
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.timeout_s - (time.monotonic() - self._started)) * 1000), 0)


def _failure_point(response: object, batch: Sequence[StreamRecord]) -> int | None:
    """Index in ``batch`` to restart from; ``None`` for success; ``0`` for a complete failure."""
    if response is None or not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if not failures:
        return None
    index = {r.sequence_number: i for i, r in enumerate(batch)}
    points = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in index:
            return 0  # Lambda treats a malformed or unknown identifier as a complete failure
        points.append(index[identifier])
    return min(points)


class ShardDriver:
    """Drive ``handler`` over one shard's records with Lambda's semantics; see the module docstring."""

    def __init__(
        self,
        handler: Handler,
        settings: EsmSettings,
        *,
        stream_arn: str,
        on_failure: Callable[[dict[str, Any]], None] | None = None,
        now: Callable[[], float] = time.time,
        redeliver: Callable[[], bool] = lambda: False,
        region: str = "us-east-1",
        max_invocations: int = 1_000_000,
        retry_delay: Callable[[int], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.handler = handler
        self.settings = settings
        self.stream_arn = stream_arn
        self.region = region
        self.stats = EsmStats()
        self._on_failure = on_failure
        self._now = now
        self._redeliver = redeliver
        self.max_invocations = max_invocations
        self._retry_delay = retry_delay
        self._sleep = sleep

    def drain(self, records: Sequence[StreamRecord]) -> int:
        """Process ``records`` (one shard, sequence order) until the checkpoint passes them all.

        Returns the checkpoint index (``len(records)``). Exceptions of the handler never escape:
        they are function errors, handled as Lambda would. With infinite retries a record that fails
        forever would loop forever, as in Lambda until the record expires; ``max_invocations`` stops
        the model with ``RuntimeError`` instead.
        """
        checkpoint = 0
        while checkpoint < len(records):
            checkpoint = self._one_batch(records, checkpoint)
        return checkpoint

    def _one_batch(self, records: Sequence[StreamRecord], start: int) -> int:
        """Deliver the batch at ``start`` until it is checkpointed or discarded; return the new checkpoint."""
        end = min(start + self.settings.batch_size, len(records))
        retries = 0
        while True:
            batch = records[start:end]
            if self._too_old(batch[0]):
                return self._discard(batch, "RecordAgeExceeded", retries, end)
            restart = self._invoke(batch)
            if restart is None:
                if self._redeliver():
                    self.stats.redeliveries += 1
                    self._invoke(batch)  # a duplicate delivery: its outcome does not move the checkpoint
                return end
            if restart > 0:  # a partial failure: everything before the reported record is done
                self.stats.partial_failures += 1
                return start + restart
            if self.settings.bisect_on_error and len(batch) > 1:
                self.stats.bisections += 1
                end = start + len(batch) // 2
                continue
            retries += 1
            if 0 <= self.settings.maximum_retry_attempts < retries:
                return self._discard(batch, "RetryAttemptsExhausted", retries, end)
            if self.stats.invocations >= self.max_invocations:
                raise RuntimeError(f"gave up after {self.stats.invocations} invocations: a record fails forever")
            if self._retry_delay is not None:
                self._sleep(self._retry_delay(retries))

    def _invoke(self, batch: Sequence[StreamRecord]) -> int | None:
        self.stats.invocations += 1
        self.stats.records_delivered += len(batch)
        try:
            response = self.handler(lambda_event(batch, self.stream_arn, self.region), FakeLambdaContext())
        except Exception:  # noqa: BLE001 - any handler exception is a Lambda function error, by definition
            self.stats.function_errors += 1
            return 0
        if not self.settings.report_batch_item_failures:
            return None
        return _failure_point(response, batch)

    def _too_old(self, record: StreamRecord) -> bool:
        age = self.settings.maximum_record_age_s
        return age >= 0 and self._now() - record.arrival.timestamp() > age

    def _discard(self, batch: Sequence[StreamRecord], condition: str, retries: int, end: int) -> int:
        self.stats.discarded_batches += 1
        self.stats.discarded_records += len(batch)
        if self._on_failure is not None:
            self._on_failure(
                {
                    "version": "1.0",
                    "timestamp": datetime.now(UTC).isoformat(),
                    "requestContext": {"condition": condition, "approximateInvokeCount": retries + 1},
                    "KinesisBatchInfo": {
                        "shardId": batch[0].shard_id,
                        "startSequenceNumber": batch[0].sequence_number,
                        "endSequenceNumber": batch[-1].sequence_number,
                        "approximateArrivalOfFirstRecord": batch[0].arrival.isoformat(),
                        "approximateArrivalOfLastRecord": batch[-1].arrival.isoformat(),
                        "batchSize": len(batch),
                        "streamArn": self.stream_arn,
                    },
                }
            )
        return end
