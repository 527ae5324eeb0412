"""The consumer Lambda in one object: its clients, its sinks, its processor and its handler.

:func:`build_consumer` is the one place the consumer's parts meet; :func:`consumer_from_env` builds it
from the environment the template sets. The Lambda module (``consumers/kinesis_consumer.py``) calls
it once per container; the local runtime, the demo and the benchmarks call it too, with their own
environment, so they run exactly the code Lambda runs: no module reloads, no patched ``os.environ``.

Per invocation, :meth:`Consumer.handle`:

- turns the Lambda event into :class:`~pipeline.stream.StreamRecord` objects;
- derives the batch's **deadline**, when every AWS call must have ended: the invocation's remaining
  time less a safety margin. No call starts that could not end by then (its worst duration is the
  clients' connect plus read timeouts), so a batch that cannot finish reports its first unpersisted
  record (``batchItemFailures``) instead of being killed by the function timeout mid-write;
- logs with the shard and sequence range, and emits EMF metrics (records, events, bad rows,
  duplicates, resends, item writes, DynamoDB calls, latency, iterator age, retries).

botocore's own retries are off on the consumer's clients (``max_attempts=1``): every retry is the
sinks' (:class:`~pipeline.retry.RetryPolicy`), bounded by the deadline, so retries never stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from pipeline.consumer.badrows import S3BadRowSink
from pipeline.consumer.config import ConsumerConfig
from pipeline.consumer.context import ContextLoaderFromStore
from pipeline.consumer.dedup import EventDeduplicator
from pipeline.consumer.dedup_dynamodb import DynamoDedupStore
from pipeline.consumer.observability import traced, tracing_enabled
from pipeline.consumer.processor import BatchOutcome, BatchProcessor
from pipeline.metrics.flush import FlushResult
from pipeline.metrics.tables import Resources
from pipeline.metrics.writer import DynamoMetricWriter
from pipeline.objectstore import S3ObjectWriter
from pipeline.plugins import REGISTRY
from pipeline.retry import NO_DEADLINE, Deadline, invocation_deadline
from pipeline.settings import Settings, aws_client, lazy_client
from pipeline.stream import records_of

__all__ = [
    "Consumer",
    "ConsumerClients",
    "build_consumer",
    "consumer_clients",
    "consumer_from_env",
]


@dataclass(frozen=True, slots=True)
class ConsumerClients:
    dynamodb: Any
    sqs: Any
    s3: Any


def consumer_clients(settings: Settings) -> ConsumerClients:
    """The consumer's clients (``settings`` already without botocore retries, see :func:`build_consumer`).

    DynamoDB skips client-side parameter validation: every request is built by
    ``pipeline.metrics.statements`` from typed values, and validating the nested PartiQL parameter
    lists costs about 15 us of CPU per event. SQS and S3 are built on first use: most batches send no
    fulfilment message and have no bad row, and each client costs cold-start time.
    """
    return ConsumerClients(
        aws_client("dynamodb", settings, validate=False), lazy_client("sqs", settings), lazy_client("s3", settings)
    )


class ReportingWriter(Protocol):
    """The metric sink as the handler sees it: what its last flush did (for the EMF metrics)."""

    @property
    def last(self) -> FlushResult | None: ...


class Consumer:
    """The built consumer; :meth:`handle` is one invocation. One batch at a time (Lambda's model).

    ``writer`` is the processor's metric sink; ``clients`` are ``None`` when the sinks are in memory.
    """

    def __init__(
        self,
        processor: BatchProcessor,
        writer: ReportingWriter,
        clients: ConsumerClients | None,
        *,
        call_seconds: float,
        logger: Logger,
        metrics: Metrics,
        tracing: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processor = processor
        self.writer = writer
        self.clients = clients
        self.call_seconds = call_seconds
        self.logger = logger
        self.metrics = metrics
        self.clock = clock
        """The clock deadlines run on (monotonic seconds); tests simulate slow calls with their own."""
        self.lambda_handler: Callable[[dict[str, Any], Any], dict[str, Any]] = metrics.log_metrics(
            traced(logger.inject_lambda_context(self.handle, clear_state=True), tracing)
        )
        """:meth:`handle` inside Powertools' decorators (context in logs, EMF flushed): the Lambda handler."""

    def deadline(self, context: Any) -> Deadline:
        """When every call must have ended: the invocation's end less the margin (none without a context)."""
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        if remaining_ms is None:
            return NO_DEADLINE
        return invocation_deadline(remaining_ms() / 1000, self.clock)

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Process one invocation; return the ``ReportBatchItemFailures`` response."""
        started = time.monotonic()
        records = records_of(event)
        if not records:
            return {"batchItemFailures": []}
        deadline = self.deadline(context)
        metrics = self.metrics
        metrics.add_metric(name="Records", unit=MetricUnit.Count, value=len(records))  # before any failure
        self.logger.append_keys(
            shard_id=records[0].shard_id,
            first_sequence_number=records[0].sequence_number,
            last_sequence_number=records[-1].sequence_number,
            records=len(records),
        )
        outcome = self.processor.process(records, deadline)
        iterator_age_ms = (datetime.now(UTC) - records[-1].arrival).total_seconds() * 1000
        metrics.add_metric(name="Events", unit=MetricUnit.Count, value=outcome.events)
        metrics.add_metric(name="BadRows", unit=MetricUnit.Count, value=outcome.bad_rows)
        metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=outcome.duplicates)
        metrics.add_metric(name="ResentEvents", unit=MetricUnit.Count, value=outcome.resends)
        if self.writer.last is not None:
            stats = self.writer.last.stats
            metrics.add_metric(name="ItemWrites", unit=MetricUnit.Count, value=stats.item_writes)
            metrics.add_metric(name="DynamoDBCalls", unit=MetricUnit.Count, value=stats.api_calls)
        metrics.add_metric(name="BatchLatency", unit=MetricUnit.Milliseconds, value=(time.monotonic() - started) * 1000)
        metrics.add_metric(name="IteratorAge", unit=MetricUnit.Milliseconds, value=max(iterator_age_ms, 0.0))
        self._log(outcome)
        return outcome.response()

    def _log(self, outcome: BatchOutcome) -> None:
        if outcome.bad_rows:
            self.logger.warning(
                "bad rows sent to the sink",
                extra={"bad_rows": outcome.bad_rows, "reasons": outcome.bad_row_reasons[:5]},
            )
        if outcome.failed_sequence_number is not None:
            self.metrics.add_metric(name="BatchRetries", unit=MetricUnit.Count, value=1)
            self.logger.warning(
                "batch stops at a transient failure; Lambda retries from this record",
                extra={"failed_sequence_number": outcome.failed_sequence_number, "reason": outcome.reason},
            )
        else:
            self.logger.info("batch processed", extra={"events": outcome.events, "bad_rows": outcome.bad_rows})


def build_consumer(
    settings: Settings,
    resources: Resources,
    config: ConsumerConfig | None = None,
    clients: ConsumerClients | None = None,
    *,
    logger: Logger | None = None,
    metrics: Metrics | None = None,
    tracing: bool | None = None,
) -> Consumer:
    """The production consumer: DynamoDB writer, reader and dedup store, S3 bad rows, every plugin.

    ``settings`` says where AWS is; the consumer's clients get :meth:`Settings.for_lambda` (short timeouts, no
    botocore retries, and every sink retries by ``settings.retry``. ``clients`` lets a caller build
    (and keep hold of) them itself: benchmarks count their calls, tests inject faults. ``logger``,
    ``metrics`` and ``tracing`` default to Powertools' own reading of ``os.environ``.
    """
    settings = settings.for_lambda()
    clients = clients or consumer_clients(settings)
    config = config or ConsumerConfig()
    retry, call_seconds = settings.retry, settings.call_seconds
    writer = DynamoMetricWriter(
        clients.dynamodb,
        clients.sqs,
        resources,
        retry=retry,
        call_seconds=call_seconds,
        max_concurrency=config.writer_concurrency,
        key_split=config.key_split,
    )
    dedup_store = DynamoDedupStore(
        clients.dynamodb, resources.table("event_dedup"), retry=retry, call_seconds=call_seconds
    )
    bad_rows = S3BadRowSink(
        S3ObjectWriter(clients.s3, resources.bad_rows_bucket, retry=retry, call_seconds=call_seconds),
        resources.bad_rows_prefix,
    )
    processor = BatchProcessor(
        REGISTRY,
        writer,
        ContextLoaderFromStore(writer, REGISTRY, config.plugins),
        bad_rows,
        EventDeduplicator(dedup_store, config.dedup_window),
        policy=config.policy,
    )
    return Consumer(
        processor,
        writer,
        clients,
        call_seconds=call_seconds,
        logger=logger or Logger(),
        metrics=metrics or Metrics(),
        tracing=tracing,
    )


def consumer_from_env(environ: Mapping[str, str] | None = None, **options: Any) -> Consumer:
    """:func:`build_consumer` from the environment the template sets (``os.environ`` by default):
    :meth:`Settings.from_env`, :meth:`Resources.from_env`, :meth:`ConsumerConfig.from_env`, and the
    Powertools variables (service name, log level, metrics namespace, tracing) read from ``environ``
    too, so a local run with its own environment never touches ``os.environ``. ``options`` go to
    :func:`build_consumer` (``clients``, ``logger``, ...)."""
    if environ is not None:
        service = environ.get("POWERTOOLS_SERVICE_NAME")
        options.setdefault("logger", Logger(service=service, level=environ.get("POWERTOOLS_LOG_LEVEL")))
        options.setdefault("metrics", Metrics(service=service, namespace=environ.get("POWERTOOLS_METRICS_NAMESPACE")))
        options.setdefault("tracing", tracing_enabled(environ))
    return build_consumer(
        Settings.from_env(environ), Resources.from_env(environ), ConsumerConfig.from_env(environ), **options
    )
