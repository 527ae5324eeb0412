"""What the DynamoDB metric writer tests (tests/functional/test_writer*.py) share: one test's tables and
queue on the emulator read back as the oracle states them, and Lambda's re-delivery from ``failed_from``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.metrics.effects import Message
from pipeline.metrics.flush import FlushResult
from pipeline.metrics.partials import merge_tables
from pipeline.metrics.plan import Positioned
from pipeline.metrics.statements import from_attribute_values
from pipeline.metrics.tables import TABLES, Resources
from pipeline.metrics.writer import DynamoMetricWriter, encode_body
from pipeline.retry import RetryPolicy
from pipeline.settings import Settings
from tests.metric_streams import SHARD, flushed, suffix_from

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["Stores", "deliver_until_done", "expected_messages_of"]


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
        """Every logical item as ``{table: {key: item}}`` (as the oracle's ``Tables``: per-shard partials
        merged), without watermarks; with ``watermarks``, every stored item (partials apart) as stored."""
        found: dict[str, dict[Any, dict[str, object]]] = {}
        for logical, physical in self.resources.tables.items():
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=physical, ConsistentRead=True):
                for raw in page["Items"]:
                    item = from_attribute_values(raw)
                    key = tuple((name, item[name]) for name in TABLES[logical].keys)
                    found.setdefault(logical, {})[key] = item
        return found if watermarks else merge_tables(found)

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


def expected_messages_of(stream: Sequence[Positioned]) -> dict[str, object]:
    bodies: dict[str, object] = {}
    for positioned in stream:
        if isinstance(positioned.effect, Message):
            bodies.setdefault(positioned.effect.dedup_id, orjson.loads(encode_body(positioned.effect)))
    return bodies


def deliver_until_done(
    writer: DynamoMetricWriter, stream: Sequence[Positioned], attempts: int = 20
) -> list[FlushResult]:
    """Lambda with ReportBatchItemFailures: re-deliver from ``failed_from`` until everything is persisted."""
    results = [flushed(writer, SHARD, stream)]
    while results[-1].failed_from is not None:
        assert len(results) < attempts, results
        results.append(flushed(writer, SHARD, suffix_from(stream, results[-1].failed_from)))
    return results
