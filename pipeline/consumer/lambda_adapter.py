"""From a Lambda Kinesis event to the processor and back: records, logging context, EMF metrics.

The handler module only wires; this module owns the translation, so it is tested without Lambda.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent

from pipeline.consumer.processor import BatchProcessor, KinesisRecord

__all__ = ["handle_kinesis_event", "records_of"]


def records_of(event: KinesisStreamEvent) -> list[KinesisRecord]:
    """The batch's records in the order Lambda delivered them (sequence order within the shard)."""
    out = []
    for record in event.records:
        shard_id = record.event_id.split(":", 1)[0]
        kinesis = record.kinesis
        arrival = datetime.fromtimestamp(kinesis.approximate_arrival_timestamp, tz=UTC)
        out.append(KinesisRecord(shard_id, kinesis.sequence_number, kinesis.data_as_bytes(), arrival))
    return out


def handle_kinesis_event(
    raw_event: dict[str, Any], processor: BatchProcessor, logger: Logger, metrics: Metrics
) -> dict[str, Any]:
    """Process one invocation; return the ``ReportBatchItemFailures`` response.

    Logs carry the shard and the sequence range; EMF metrics: events, bad rows, duplicates within the
    batch, resends from earlier batches, item writes, API calls, batch latency and iterator age (how far
    behind the newest record the batch is).
    """
    started = time.monotonic()
    records = records_of(KinesisStreamEvent(raw_event))
    if not records:
        return {"batchItemFailures": []}
    metrics.add_metric(name="Records", unit=MetricUnit.Count, value=len(records))  # before any failure can occur
    logger.append_keys(
        shard_id=records[0].shard_id,
        first_sequence_number=records[0].sequence_number,
        last_sequence_number=records[-1].sequence_number,
        records=len(records),
    )
    outcome = processor.process(records)
    iterator_age_ms = (datetime.now(UTC) - records[-1].arrival).total_seconds() * 1000
    metrics.add_metric(name="Events", unit=MetricUnit.Count, value=outcome.events)
    metrics.add_metric(name="BadRows", unit=MetricUnit.Count, value=outcome.bad_rows)
    metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=outcome.duplicates)
    metrics.add_metric(name="ResentEvents", unit=MetricUnit.Count, value=outcome.resends)
    if outcome.flush is not None:
        metrics.add_metric(name="ItemWrites", unit=MetricUnit.Count, value=outcome.flush.stats.item_writes)
        metrics.add_metric(name="DynamoDBCalls", unit=MetricUnit.Count, value=outcome.flush.stats.api_calls)
    metrics.add_metric(name="BatchLatency", unit=MetricUnit.Milliseconds, value=(time.monotonic() - started) * 1000)
    metrics.add_metric(name="IteratorAge", unit=MetricUnit.Milliseconds, value=max(iterator_age_ms, 0.0))
    if outcome.bad_rows:
        logger.warning(
            "bad rows sent to the sink", extra={"bad_rows": outcome.bad_rows, "reasons": outcome.bad_row_reasons[:5]}
        )
    if outcome.failed_sequence_number is not None:
        metrics.add_metric(name="BatchRetries", unit=MetricUnit.Count, value=1)
        logger.warning(
            "batch stops at a transient failure; Lambda retries from this record",
            extra={"failed_sequence_number": outcome.failed_sequence_number, "reason": outcome.reason},
        )
    else:
        logger.info("batch processed", extra={"events": outcome.events, "bad_rows": outcome.bad_rows})
    return outcome.response()
