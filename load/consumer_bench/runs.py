"""The consumers under test: the project's (as Lambda runs it), its floor, and the seed design's.

- :func:`project_run` builds the consumer with :func:`~pipeline.consumer.handler.build_consumer` (the
  code ``consumers/kinesis_consumer.py`` runs) on clients this module counts, and invokes
  :meth:`~pipeline.consumer.handler.Consumer.handle` batch after batch as Lambda does for one shard,
  restarting a batch at the record a partial failure reports.
- :func:`floor_run` passes the same batches through the same processor on the in-memory store: for
  each batch, the distinct items its effects touch, which no writer can write fewer of; and the
  consumer's CPU without any AWS call.
- :func:`seed_style_run` is the source design's consumer (one blocking call or more per event).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics

from load.consumer_bench.counting import CallCounter, Stopwatch
from load.consumer_bench.figures import FloorFigures, RunFigures
from load.seed_consumer import SeedStyleConsumer
from pipeline.codecs import DecodedEvent, RecordFormat, decode_record, encode_records
from pipeline.consumer.context import ContextLoaderFromStore
from pipeline.consumer.dedup import EventDeduplicator
from pipeline.consumer.handler import Consumer, build_consumer, consumer_clients
from pipeline.consumer.processor import BatchProcessor
from pipeline.events import Event
from pipeline.exceptions import PipelineError
from pipeline.metrics.effects import Effect, ItemKey, Message
from pipeline.metrics.flush import WriterStats
from pipeline.metrics.plan import State
from pipeline.metrics.tables import Resources
from pipeline.metrics.writer import MESSAGES_PER_CALL, STATEMENTS_PER_CALL
from pipeline.plugins import REGISTRY
from pipeline.retry import NO_DEADLINE, Deadline
from pipeline.settings import Settings, aws_client
from pipeline.stream import StreamRecord, lambda_event
from tools.memory import MemoryBadRowSink, MemoryDedupStore, MemoryMetricWriter, MemoryStore

__all__ = ["BenchCheckError", "floor_run", "project_run", "seed_style_run", "stream_of"]

SHARD: Final = "shardId-000000000000"
STREAM_ARN: Final = "arn:aws:kinesis:us-east-1:000000000000:stream/bench-consumer"
DEDUP_WINDOW: Final = timedelta(hours=1)
_ARRIVAL: Final = datetime.fromtimestamp(1_795_500_000.0, tz=UTC)
_MAX_RETRIES: Final = 20


class BenchCheckError(PipelineError):
    """The run itself went wrong (a batch never succeeded, a subprocess failed): the figures mean nothing."""


def stream_of(events: Sequence[Event]) -> list[StreamRecord]:
    """Each event as its own json record on one shard, with increasing 56-digit sequence numbers."""
    return [
        StreamRecord(SHARD, f"{49_000_000_000 + i:056d}", r.data, _ARRIVAL + timedelta(milliseconds=i), r.partition_key)
        for i, r in enumerate(encode_records(events, RecordFormat.JSON))
    ]


class _FloorSink:
    """The in-memory metric sink, noting per flush the distinct items and messages the batch touches."""

    def __init__(self, writer: MemoryMetricWriter) -> None:
        self._writer = writer
        self._batch: list[Effect] = []
        self.effects = self.messages = self.write_calls = 0
        self.items: Counter[str] = Counter()

    def add(self, position: str, item: Effect) -> None:
        self._batch.append(item)
        self._writer.add(position, item)

    def flush(self, shard_id: str, deadline: Deadline) -> str | None:
        batch, self._batch = self._batch, []
        items = {(e.table, e.key) for e in batch if not isinstance(e, Message)}
        messages = {(e.queue, e.dedup_id) for e in batch if isinstance(e, Message)}
        self.effects += len(batch)
        self.items.update(table for table, _ in items)
        self.messages += len(messages)
        self.write_calls += math.ceil(len(items) / STATEMENTS_PER_CALL) + math.ceil(len(messages) / MESSAGES_PER_CALL)
        return self._writer.flush(shard_id, deadline)

    def discard(self) -> str | None:
        self._batch = []
        return self._writer.discard()

    def read(self, table: str, keys: Sequence[ItemKey], deadline: Deadline = NO_DEADLINE) -> dict[ItemKey, State]:
        return self._writer.read(table, keys, deadline)


def floor_run(batches: Sequence[Sequence[StreamRecord]], events: int) -> FloorFigures:
    """The same processor on the in-memory store: distinct items per batch, and CPU without AWS."""
    sink = _FloorSink(MemoryMetricWriter(MemoryStore()))
    dedup = EventDeduplicator(MemoryDedupStore(), DEDUP_WINDOW)
    processor = BatchProcessor(REGISTRY, sink, ContextLoaderFromStore(sink, REGISTRY), MemoryBadRowSink(), dedup)
    started = time.process_time()
    for records in batches:
        outcome = processor.process(records)
        if outcome.failed_sequence_number is not None:
            raise BenchCheckError(f"the in-memory pass failed a batch: {outcome.reason}")
    cpu = time.process_time() - started
    by_table = dict(sink.items.most_common())
    return FloorFigures(
        events, len(batches), sum(by_table.values()), by_table, sink.messages, sink.write_calls, sink.effects, cpu
    )


def _deliver(batch: Sequence[StreamRecord], consumer: Consumer, stats: WriterStats) -> tuple[int, int]:
    """Invoke until the batch succeeds, restarting at the reported record as Lambda does.

    Returns ``(retries, effects flushed)``; the writer's stats of every flush are added to ``stats``.
    """
    effects = 0
    for retries in range(_MAX_RETRIES + 1):
        response = consumer.handle(lambda_event(batch, STREAM_ARN))
        consumer.metrics.clear_metrics()  # as @metrics.log_metrics does after each invocation
        last = consumer.writer.last
        if last is not None:
            effects += last.effects
            for f in fields(WriterStats):
                setattr(stats, f.name, getattr(stats, f.name) + getattr(last.stats, f.name))
        failures = response["batchItemFailures"]
        if not failures:
            return retries, effects
        failed = failures[0]["itemIdentifier"]
        batch = batch[next(i for i, r in enumerate(batch) if r.sequence_number == failed) :]
    raise BenchCheckError(f"a batch still failed after {_MAX_RETRIES} retries (from record {batch[0].sequence_number})")


def project_run(
    settings: Settings,
    resources: Resources,
    batches: Sequence[Sequence[StreamRecord]],
    pgid: int | None,
    note: Callable[[str], None],
) -> tuple[RunFigures, int]:
    """The project's consumer over every batch: its figures and how many invocations were retries."""
    clients = consumer_clients(settings.for_lambda())  # as build_consumer makes them
    counter = CallCounter(watch=resources.table("event_dedup"))
    for client in (clients.dynamodb, clients.sqs, clients.s3):
        counter.attach(client)
    consumer = build_consumer(
        settings,
        resources,
        clients=clients,
        logger=Logger(service="bench-consumer", level="CRITICAL"),
        metrics=Metrics(namespace="Bench", service="bench-consumer"),
        tracing=False,
    )
    stats = WriterStats()
    retries = done = effects = 0
    clock = Stopwatch(pgid)
    for number, batch in enumerate(batches, start=1):
        again, flushed = _deliver(batch, consumer, stats)
        retries, effects, done = retries + again, effects + flushed, done + len(batch)
        if number % max(len(batches) // 5, 1) == 0 or number == len(batches):
            note(f"project consumer: {number}/{len(batches)} batches, {done:,} records")
    wall, cpu, emulator = clock.stop()
    figures = RunFigures(done, len(batches) + retries, wall, cpu, emulator, counter.counts(), stats, effects)
    return figures, retries


def seed_style_run(
    settings: Settings,
    resources: Resources,
    batches: Sequence[Sequence[StreamRecord]],
    pgid: int | None,
    note: Callable[[str], None],
) -> RunFigures:
    """The seed design's consumer over the same records: decode, then blocking calls per event."""
    dynamodb: Any = aws_client("dynamodb", settings)
    counter = CallCounter()
    counter.attach(dynamodb)
    consumer = SeedStyleConsumer(dynamodb, resources)
    total, done = sum(len(batch) for batch in batches), 0
    clock = Stopwatch(pgid)
    for batch in batches:
        results = (decode_record(r.data, r.shard_id, r.sequence_number) for r in batch)
        consumer.process([d.event for found in results for d in found if isinstance(d, DecodedEvent)])
        done += len(batch)
        note(f"seed-style consumer: {done:,}/{total:,} records")
    wall, cpu, emulator = clock.stop()
    return RunFigures(done, len(batches), wall, cpu, emulator, counter.counts())
