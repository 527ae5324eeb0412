"""Lambda entry point for the Kinesis event source mapping (``ReportBatchItemFailures`` on).

Wiring only: clients and the processor are built once per container; each invocation is handed to
``pipeline.consumer``. Configuration comes from the environment the template sets.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.consumer.config import ConsumerConfig
from pipeline.consumer.lambda_adapter import handle_kinesis_event
from pipeline.consumer.observability import traced
from pipeline.consumer.wiring import build_processor, consumer_clients
from pipeline.metrics.tables import Resources
from pipeline.settings import Settings

logger = Logger()
metrics = Metrics()
settings = Settings.from_env()
clients = consumer_clients(settings)
processor = build_processor(settings, Resources.from_env(), clients, ConsumerConfig.from_env())


@metrics.log_metrics
@traced
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_kinesis_event(event, processor, logger, metrics)
