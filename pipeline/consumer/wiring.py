"""Build the consumer's processor from settings and resource names: the one place parts meet.

Called once per Lambda container (module scope of the handler), or once per local runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.consumer.badrows import S3BadRowSink
from pipeline.consumer.config import ConsumerConfig
from pipeline.consumer.context import ContextLoaderFromStore
from pipeline.consumer.dedup import EventDeduplicator
from pipeline.consumer.dedup_dynamodb import DynamoDedupStore
from pipeline.consumer.processor import BatchProcessor
from pipeline.metrics.tables import Resources
from pipeline.metrics.writer import DynamoMetricWriter
from pipeline.plugins import REGISTRY
from pipeline.settings import Settings, aws_client, lazy_client

__all__ = ["ConsumerClients", "build_processor", "consumer_clients"]


@dataclass(frozen=True, slots=True)
class ConsumerClients:
    dynamodb: Any
    sqs: Any
    s3: Any


def consumer_clients(settings: Settings) -> ConsumerClients:
    """The consumer's clients. DynamoDB skips client-side parameter validation: every request is built
    by ``pipeline.metrics.statements`` from typed values, and validating the nested PartiQL parameter
    lists costs about 15 us of CPU per event. SQS and S3 are built on first use: most batches send no
    fulfilment message and have no bad row, and each client costs cold-start time."""
    return ConsumerClients(
        aws_client("dynamodb", settings, validate=False), lazy_client("sqs", settings), lazy_client("s3", settings)
    )


def build_processor(
    settings: Settings,
    resources: Resources,
    clients: ConsumerClients | None = None,
    config: ConsumerConfig | None = None,
) -> BatchProcessor:
    """The production processor: DynamoDB writer, reader and dedup store, S3 bad rows, every plugin.

    ``clients`` lets a caller keep hold of them (benchmarks count their calls; tests inject faults).
    """
    clients = clients or consumer_clients(settings)
    config = config or ConsumerConfig()
    writer = DynamoMetricWriter(clients.dynamodb, clients.sqs, resources)
    dedup = EventDeduplicator(DynamoDedupStore(clients.dynamodb, resources.table("event_dedup")), config.dedup_window)
    return BatchProcessor(
        REGISTRY,
        writer,
        ContextLoaderFromStore(writer, REGISTRY, config.plugins),
        S3BadRowSink(clients.s3, resources.bad_rows_bucket, resources.bad_rows_prefix),
        dedup,
        policy=config.policy,
    )
