"""Lambda entry point of the outbox relay (every minute; one at a time: reserved concurrency 1).

Wiring only: the Data API backend, the producer and the relay are built once per container; each
invocation drains the SQL store's outbox into the events stream (:mod:`pipeline.stores.sql.outbox`).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.settings import Settings, aws_client
from pipeline.stores.cdc import events_stream_from_env
from pipeline.stores.sql.data_api import DataApiBackend, data_api_target_from_env
from pipeline.stores.sql.outbox import OutboxRelay
from producers import Producer

logger = Logger()
settings = Settings.from_env()
backend = DataApiBackend(aws_client("rds-data", settings), **data_api_target_from_env(os.environ))
producer = Producer(
    events_stream_from_env(os.environ), aws_client("kinesis", settings.with_(max_attempts=1)), linger_seconds=0
)
relay = OutboxRelay(backend, producer)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = relay.drain(max_batches=20)  # 20 x 500 events a minute; what is left waits for the next run
    logger.info("outbox drained", extra={"published": result.published, "batches": result.batches})
    return {"published": result.published, "batches": result.batches}
