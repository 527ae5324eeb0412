"""Build the consumer's processor from settings and resource names: the one place parts meet.

Called once per Lambda container (module scope of the handler), or once per local runtime.
"""

from __future__ import annotations

from pipeline.consumer.badrows import S3BadRowSink
from pipeline.consumer.context import ContextLoaderFromStore
from pipeline.consumer.processor import BatchProcessor
from pipeline.metrics.tables import Resources
from pipeline.metrics.writer import DynamoMetricWriter
from pipeline.plugins import REGISTRY
from pipeline.settings import Settings, aws_client, lazy_client

__all__ = ["build_processor"]


def build_processor(settings: Settings, resources: Resources) -> BatchProcessor:
    """The production processor: DynamoDB writer and reader, S3 bad rows, every registered plugin.

    The SQS and S3 clients are built on first use: most batches send no fulfilment message and have
    no bad row, and each client costs cold-start time.
    """
    dynamodb = aws_client("dynamodb", settings)
    writer = DynamoMetricWriter(dynamodb, lazy_client("sqs", settings), resources)
    return BatchProcessor(
        REGISTRY,
        writer,
        ContextLoaderFromStore(writer),
        S3BadRowSink(lazy_client("s3", settings), resources.bad_rows_bucket, resources.bad_rows_prefix),
    )
