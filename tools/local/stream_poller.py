"""Drives a DynamoDB Streams handler where no Lambda event source mapping runs (locally, in tests).

ministack serves DynamoDB Streams (``DescribeStream``, ``GetShardIterator``, ``GetRecords``) but its
event source mappings do not re-deliver after a partial failure (see ``shared/EMULATOR.md``), so the
same handler code is driven by this poller, with the mapping's documented semantics:

- records reach the handler in the Lambda event's shape (``eventSourceARN``, ``dynamodb`` with
  AttributeValue images, ``ApproximateCreationDateTime`` as epoch seconds), in sequence order per shard,
  at most ``batch_size`` per invocation;
- a response naming ``batchItemFailures`` checkpoints *before* the first named record: it and everything
  after it come again in the next invocation; an empty list checkpoints after the batch;
- a handler that raises (a crash) checkpoints nothing: the whole batch comes again.

Simplifications: shards are read in the order ``DescribeStream`` lists them, one after the other (no
parallelism, no parent-before-child wait, which one shard, as on the emulator, never needs), and a
failing batch is retried without limit (no ``MaximumRetryAttempts`` or on-failure destination).
Not thread-safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

__all__ = ["DynamoDBStreamPoller"]

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Mapping[str, Any]]


class DynamoDBStreamPoller:
    """Polls the stream ``stream_arn`` with a ``dynamodbstreams`` client and feeds ``handler``."""

    def __init__(self, streams: Any, stream_arn: str, handler: Handler, *, batch_size: int = 100) -> None:
        self._streams = streams
        self._arn = stream_arn
        self._handler = handler
        self._batch_size = batch_size
        self._region = stream_arn.split(":")[3] if stream_arn.count(":") >= 3 else ""
        self._checkpoints: dict[str, str] = {}  # shard -> last sequence number handled
        self.invocations = 0
        self.redeliveries = 0

    def poll_once(self) -> int:
        """One invocation per shard that has records; how many records were handed over."""
        handed = 0
        shards = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]["Shards"]
        for shard in shards:
            handed += self._poll_shard(shard["ShardId"])
        return handed

    def run_until_idle(self, *, max_invocations: int = 1_000) -> int:
        """Poll until a round hands nothing over; the records handed over in all (re-deliveries count)."""
        total = 0
        for _ in range(max_invocations):
            handed = self.poll_once()
            if not handed:
                return total
            total += handed
        raise RuntimeError(f"the stream was not drained in {max_invocations} rounds")

    def _poll_shard(self, shard_id: str) -> int:
        after = self._checkpoints.get(shard_id)
        position: dict[str, str] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
            if after
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = self._streams.get_shard_iterator(StreamArn=self._arn, ShardId=shard_id, **position)["ShardIterator"]
        records = self._streams.get_records(ShardIterator=iterator, Limit=self._batch_size)["Records"]
        if not records:
            return 0
        event = {"Records": [self._lambda_record(record) for record in records]}
        self.invocations += 1
        try:
            response = self._handler(event)
        except Exception:  # a crashed invocation: Lambda retries the whole batch
            log.warning("handler failed on %s; the batch comes again", shard_id, exc_info=True)
            self.redeliveries += 1
            return len(records)
        failures = [str(f["itemIdentifier"]) for f in response.get("batchItemFailures") or []]
        sequences = [record["dynamodb"]["SequenceNumber"] for record in records]
        if not failures:
            self._checkpoints[shard_id] = sequences[-1]
            return len(records)
        self.redeliveries += 1
        first = min(sequences.index(f) for f in failures if f in sequences)
        if first > 0:
            self._checkpoints[shard_id] = sequences[first - 1]
        return len(records)

    def _lambda_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            change["ApproximateCreationDateTime"] = created.timestamp()
        return {
            "eventID": record.get("eventID"),
            "eventName": record.get("eventName"),
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion", self._region),
            "dynamodb": change,
            "eventSourceARN": self._arn,
        }
