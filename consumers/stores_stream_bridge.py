"""Lambda entry point for the store table's DynamoDB stream (``ReportBatchItemFailures`` on).

Wiring only: the producer and the bridge are built once per container; each invocation is handed to
:class:`pipeline.stores.cdc.StreamBridge`. ``EVENTS_STREAM`` comes from the template.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.settings import Settings, aws_client
from pipeline.stores.cdc import StreamBridge, events_stream_from_env
from producers import Producer

logger = Logger()
settings = Settings.from_env()
# The producer owns retries (botocore's would sleep inside its backoff); it flushes at the end of each call.
producer = Producer(
    events_stream_from_env(os.environ), aws_client("kinesis", settings.with_(max_attempts=1)), linger_seconds=0
)
bridge = StreamBridge(producer)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return bridge.handle(event)
