"""Lambda entry point for the Kinesis event source mapping (``ReportBatchItemFailures`` on).

Wiring only: the consumer (clients, sinks, processor) is built once per container from the environment
the template sets (:func:`pipeline.consumer.handler.consumer_from_env`); ``handler`` is its Lambda
handler.
"""

from __future__ import annotations

from pipeline.consumer.handler import consumer_from_env

consumer = consumer_from_env()
handler = consumer.lambda_handler
