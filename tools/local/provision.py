"""Provision the consumer's stores on an emulator: every table of ``TABLES`` and the queues.

Names are unique per call (``<prefix>-<table>``), so callers (tests, benchmarks) never share state and
need no cleanup order. Key attributes are strings (``S``), as every key the plugins write. Tables are
PAY_PER_REQUEST; ``fulfilment`` is an SQS FIFO queue without content-based deduplication (the writer
always sends a ``MessageDeduplicationId``). The bad-rows bucket is named, not created: callers that
expect bad rows create it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipeline.metrics.tables import QUEUES, TABLES, Resources
from pipeline.settings import Settings, aws_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["create_resources", "delete_resources", "provisioned"]


def create_resources(settings: Settings, prefix: str | None = None) -> Resources:
    """Create every table and queue under a fresh ``prefix``; return their physical names."""
    dynamodb: DynamoDBClient = aws_client("dynamodb", settings)
    sqs: SQSClient = aws_client("sqs", settings)
    prefix = prefix or f"t{uuid.uuid4().hex[:10]}"
    tables: dict[str, str] = {}
    for logical, spec in TABLES.items():
        name = f"{prefix}-{logical}"
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": a, "KeyType": "RANGE" if i else "HASH"} for i, a in enumerate(spec.keys)],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in spec.keys],
            BillingMode="PAY_PER_REQUEST",
        )
        tables[logical] = name
    for logical in tables.values():
        dynamodb.get_waiter("table_exists").wait(TableName=logical, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    queues = {
        logical: sqs.create_queue(QueueName=f"{prefix}-{logical}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        for logical in QUEUES
    }
    return Resources(tables=tables, queues=queues, bad_rows_bucket=f"{prefix}-bad-rows")


def delete_resources(settings: Settings, resources: Resources) -> None:
    """Delete what :func:`create_resources` made; already deleted is fine."""
    dynamodb: DynamoDBClient = aws_client("dynamodb", settings)
    sqs: SQSClient = aws_client("sqs", settings)
    for name in resources.tables.values():
        with contextlib.suppress(dynamodb.exceptions.ResourceNotFoundException):
            dynamodb.delete_table(TableName=name)
    for url in resources.queues.values():
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=url)


@contextlib.contextmanager
def provisioned(settings: Settings) -> Iterator[Resources]:
    """:func:`create_resources`, deleted on exit whatever happened."""
    resources = create_resources(settings)
    try:
        yield resources
    finally:
        delete_resources(settings, resources)
