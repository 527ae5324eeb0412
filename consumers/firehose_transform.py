"""Lambda entry point for the archive's Firehose data transformation (Kinesis stream source).

Wiring only: the S3 client (built on first use: most invocations split nothing) and the transform are
built once per container; each invocation is handed to ``pipeline.archive.transform``. The archive
bucket comes from ``ARCHIVE_BUCKET`` and the future horizon from ``EVENT_TIME_HORIZON_HOURS``, which
the template sets.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.archive.transform import FirehoseTransform, archive_bucket_from_env
from pipeline.events import ValidationPolicy
from pipeline.objectstore import S3ObjectWriter
from pipeline.retry import invocation_deadline
from pipeline.settings import Settings, lazy_client

logger = Logger()
metrics = Metrics()
settings = Settings.from_env().for_lambda()  # the writer retries, each call at most 12 s
transform = FirehoseTransform(
    S3ObjectWriter(
        lazy_client("s3", settings), archive_bucket_from_env(), retry=settings.retry, call_seconds=settings.call_seconds
    ),
    policy=ValidationPolicy.from_env(),
)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Every write ends a margin before the timeout (none starts that could not); then Firehose retries.
    remaining = context.get_remaining_time_in_millis() / 1000
    deadline = invocation_deadline(remaining)
    result = transform.transform(event, deadline)
    metrics.add_metric(name="ProcessingFailed", unit=MetricUnit.Count, value=result.stats.failed)
    metrics.add_metric(name="ArchivedEvents", unit=MetricUnit.Count, value=result.stats.events)
    logger.info("transformed", extra=result.stats.as_dict())
    return result.response
