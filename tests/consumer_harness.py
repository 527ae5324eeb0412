"""Shared pieces for driving the real consumer code under Lambda's semantics in tests.

Builds shard record lists from events (any format, junk mixed in, producer resends of earlier
records), the processor on in-memory stores, the handler as Lambda calls it
(:class:`~pipeline.consumer.handler.Consumer` on in-memory sinks), and fault plans drawn by hypothesis.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from pipeline.codecs import RecordFormat, encode_records
from pipeline.consumer.context import ContextLoaderFromStore
from pipeline.consumer.dedup import EventDeduplicator
from pipeline.consumer.handler import Consumer
from pipeline.consumer.processor import BatchProcessor
from pipeline.events import Event
from pipeline.partitioning import ShardMap
from pipeline.plugins import REGISTRY
from pipeline.retry import RetryPolicy
from pipeline.stream import StreamRecord
from tools.memory import MemoryBadRowSink, MemoryDedupStore, MemoryMetricWriter, MemoryStore

__all__ = ["FaultPlan", "MemoryConsumer", "build_shards", "memory_consumer", "stream_arn"]

stream_arn = "arn:aws:kinesis:us-east-1:000000000000:stream/test-events"
_ARRIVAL = datetime.fromtimestamp(1_795_500_000, UTC)


def build_shards(
    events: Sequence[Event],
    fmt: RecordFormat,
    shards: int,
    junk: Sequence[tuple[int, bytes]] = (),
    resends: Sequence[tuple[int, int]] = (),
) -> dict[str, list[StreamRecord]]:
    """Records per shard as Kinesis would hold them: increasing 30-digit sequence numbers.

    ``junk`` is ``(index, bytes)``: a bad record inserted at ``index`` (modulo length) of shard 0.
    ``resends`` is ``(which, gap)``: a producer resending record ``which`` (modulo the shard's count,
    on every shard) as a new record, ``gap`` records later (the original is never re-ordered).
    """
    shard_map = ShardMap.uniform(shards)
    out: dict[str, list[StreamRecord]] = {sid: [] for sid in shard_map.shard_ids}
    payloads: dict[str, list[tuple[str, bytes]]] = {sid: [] for sid in shard_map.shard_ids}
    for record in encode_records(list(events), fmt, shard_map, batch_raw_bytes=4_000):
        payloads[record.shard_id].append((record.partition_key, record.data))
    for sid in shard_map.shard_ids:
        target = payloads[sid]
        for which, gap in resends:
            if target:
                origin = which % len(target)
                target.insert(min(origin + 1 + gap, len(target)), target[origin])
    first = shard_map.shard_ids[0]
    for index, data in junk:
        target = payloads[first]
        target.insert(index % (len(target) + 1), ("junk", data))
    for number, sid in enumerate(shard_map.shard_ids):
        for i, (key, data) in enumerate(payloads[sid]):
            sequence = f"{number + 1:05d}{i + 1:025d}"
            out[sid].append(StreamRecord(sid, sequence, data, _ARRIVAL + timedelta(seconds=i), key))
    return out


@dataclass
class MemoryConsumer:
    """The real consumer (handler, processor, every plugin, dedup, bad rows) on in-memory stores, with
    handles on each of them for faults and checks."""

    store: MemoryStore
    writer: MemoryMetricWriter
    sink: MemoryBadRowSink
    dedup_store: MemoryDedupStore
    dedup: EventDeduplicator
    processor: BatchProcessor
    consumer: Consumer

    def new_container(self) -> None:
        """What a new Lambda container knows: nothing in memory, everything in the stores."""
        self.writer.forget()
        self.dedup.forget()

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The handler as Lambda calls it (:meth:`Consumer.handle`), with quiet Powertools objects."""
        try:
            return self.consumer.handle(event, context)
        finally:
            self.consumer.metrics.clear_metrics()


def memory_consumer(
    store: MemoryStore | None = None,
    *,
    fails: Callable[[object], bool] | None = None,
    attempts: int = 6,
    dedup_window: timedelta = timedelta(hours=1),
) -> MemoryConsumer:
    """The production processor's parts (every plugin, dedup, bad rows) on in-memory stores."""
    store = store or MemoryStore()
    writer = MemoryMetricWriter(store, fails=fails, retry=RetryPolicy(attempts=attempts, base_delay=0, max_delay=0))
    sink = MemoryBadRowSink()
    dedup_store = MemoryDedupStore()
    dedup = EventDeduplicator(dedup_store, dedup_window)
    processor = BatchProcessor(REGISTRY, writer, ContextLoaderFromStore(writer, REGISTRY), sink, dedup)
    consumer = Consumer(
        processor,
        writer,
        None,
        call_seconds=0.0,
        logger=Logger(service="test-consumer", level="CRITICAL"),
        metrics=Metrics(namespace="Test", service="test-consumer"),
    )
    return MemoryConsumer(store, writer, sink, dedup_store, dedup, processor, consumer)


@dataclass
class FaultPlan:
    """Faults decided up front by hypothesis, replayed deterministically by the test.

    ``crashes``: per invocation number, crash the writer after that many item writes (0 = before any).
    ``crash_after_return``: invocation numbers where the function dies after the flush, before
    answering (Lambda sees an error although every write landed).
    ``redeliver``: per successful batch, deliver it again.
    ``transient_rate`` / ``transient_budget``: item writes failing as throttled, at most this many.
    ``new_container``: invocation numbers before which the container's memory is dropped.
    ``dedup_failures``: invocation numbers whose dedup reads or writes fail transiently.
    """

    crashes: dict[int, int] = field(default_factory=dict)
    crash_after_return: frozenset[int] = frozenset()
    redeliver: list[bool] = field(default_factory=list)
    transient_rate: float = 0.0
    transient_budget: int = 0
    new_container: frozenset[int] = frozenset()
    dedup_failures: frozenset[int] = frozenset()
    seed: int = 0
    _rng: random.Random = field(init=False)
    _redeliveries: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def next_redelivery(self) -> bool:
        index = self._redeliveries
        self._redeliveries += 1
        return index < len(self.redeliver) and self.redeliver[index]

    def transient(self, _ref: object) -> bool:
        if self.transient_budget > 0 and self._rng.random() < self.transient_rate:
            self.transient_budget -= 1
            return True
        return False
