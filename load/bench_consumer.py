"""``pipeline bench consumer``: what the Kinesis consumer costs per event, against its floor and the seed design.

One run, one emulator, one workload (``generate_events(events, seed)``), every event encoded alone as
a json record (one event per record: the consumer's worst case), cut into Lambda batches of
``batch_size`` records:

1. **The project's consumer.** Fresh tables; the batches go one after another, as Lambda delivers one
   shard, through ``handle_kinesis_event`` to a ``BatchProcessor`` wired as ``build_processor`` wires
   it (every plugin, ``DynamoMetricWriter``, the batch context loader, the dedup window on its
   ``event_dedup`` table, S3 bad rows) on real clients. A partial failure restarts the batch at the
   record it reports, as Lambda would. The dedup window's items are measured on their own: their
   DynamoDB write units (one unit per started KB of each item) per event.
2. **The floor.** The same batches through the same processor on the in-memory store first: for each
   batch, the distinct items its effects touch (``(table, key)`` of every ``Add``, ``Extreme`` and
   ``PutOnce``). No writer can make fewer item writes than their sum. That pass also gives the
   consumer's CPU without any AWS call.
3. **The seed style.** The first ``seed_events`` records through ``SeedStyleConsumer`` (one blocking
   call or more per event), decoded by the same codec, on fresh tables of the same emulator.
4. **Cold start.** ``python -c "import boto3"`` against ``python -c "import consumers.kinesis_consumer"``
   in subprocesses with the environment the template gives the function, best of ``rounds`` each,
   alternated; then the handler again with ``POWERTOOLS_TRACE_DISABLED=true``.

Counting is done on the wire, not taken from the writer: botocore hooks on every client the consumer
holds count operations (``before-parameter-build``, once per call), HTTP attempts (``before-send``,
botocore's retries included), item writes (statements of ``BatchExecuteStatement``, items of
``BatchWriteItem``, one per ``PutItem``/``UpdateItem``/``DeleteItem``), keys read, and per-statement
errors in the answers. The writer's own ``FlushResult.stats`` are reported beside them; they cover
flushes only, not the batch context's reads.

Time: wall clock (``perf_counter``) and this process's CPU (``process_time``: every thread, so
botocore's request building and parsing are in, the emulator is not) around the processing only.
When the benchmark started the emulator, the emulator's CPU is read from ``/proc`` too. The figures
depend on the machine; targets print PASS/FAIL and never change the exit status.

Verification: after the project's run, every table is scanned and must equal
``pipeline.metrics.oracle.expected_tables(events)``; the fulfilment queue must hold one message per
completed order and the bad-rows bucket nothing. Otherwise the benchmark exits 1.
Not thread-safe; it starts subprocesses and, without ``--endpoint-url``, an emulator it stops again.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson
from aws_lambda_powertools import Logger, Metrics
from boto3.dynamodb.types import TypeDeserializer
from botocore.client import BaseClient
from botocore.model import OperationModel

from load.common import Target, add_output_options, emulator_settings, noter, positive_int
from load.seed_consumer import SeedStyleConsumer
from pipeline.codecs import DecodedEvent, RecordFormat, decode_record, encode_records
from pipeline.consumer.badrows import MemoryBadRowSink, S3BadRowSink
from pipeline.consumer.context import ContextLoaderFromStore
from pipeline.consumer.dedup import DedupItem, DedupStore, EventDeduplicator, MemoryDedupStore
from pipeline.consumer.dedup_dynamodb import DynamoDedupStore
from pipeline.consumer.lambda_adapter import handle_kinesis_event
from pipeline.consumer.processor import BatchProcessor, KinesisRecord, MetricWriter
from pipeline.consumer.wiring import consumer_clients
from pipeline.events import Event
from pipeline.exceptions import PipelineError
from pipeline.generate import generate_events
from pipeline.local import MINISTACK_VERSION
from pipeline.local.esm import StreamRecord, lambda_event
from pipeline.local.provision import create_resources, delete_resources
from pipeline.metrics.effects import Message
from pipeline.metrics.flush import FlushResult, WriterStats
from pipeline.metrics.memory import MemoryMetricWriter, MemoryStore
from pipeline.metrics.oracle import expected_messages, expected_tables
from pipeline.metrics.plan import WATERMARK_PREFIX, Positioned
from pipeline.metrics.tables import QUEUES, TABLES, Resources
from pipeline.metrics.writer import MESSAGES_PER_CALL, STATEMENTS_PER_CALL, DynamoMetricWriter
from pipeline.plugins import REGISTRY
from pipeline.settings import Settings, aws_client

__all__ = [
    "API_CALLS_TARGET",
    "CPU_US_TARGET",
    "DEDUP_WRITE_UNITS_TARGET",
    "IMPORT_RATIO_TARGET",
    "ITEM_WRITES_TARGET",
    "BenchCheckError",
    "CallCounter",
    "CallCounts",
    "ColdStartFigures",
    "ConsumerBenchResult",
    "FloorFigures",
    "RunFigures",
    "Target",
    "Verification",
    "cli",
    "configure",
    "render_table",
    "run",
]

ITEM_WRITES_TARGET: Final = 1.15
"""Item writes at most this many times the floor."""
API_CALLS_TARGET: Final = 0.1
"""AWS API calls per event, at most."""
DEDUP_WRITE_UNITS_TARGET: Final = 0.02
"""Extra DynamoDB write units per event for the dedup window, at most."""
CPU_US_TARGET: Final = 150.0
"""Consumer CPU per event, µs, at most (its AWS calls included)."""
IMPORT_RATIO_TARGET: Final = 1.5
"""Handler import wall time at most this many times ``import boto3``'s."""

_SHARD: Final = "shardId-000000000000"
_STREAM_ARN: Final = "arn:aws:kinesis:us-east-1:000000000000:stream/bench-consumer"
_ARRIVAL: Final = 1_795_500_000.0
_MAX_RETRIES: Final = 20
_REPO: Final = Path(__file__).resolve().parents[1]


class BenchCheckError(PipelineError):
    """The run itself went wrong (a batch never succeeded, a subprocess failed): the figures mean nothing."""


# --------------------------------------------------------------------------- counting on the wire


@dataclass(frozen=True, slots=True)
class CallCounts:
    """What a :class:`CallCounter` saw. ``calls``: ``"service.Operation"`` -> calls (a retried call once)."""

    calls: Mapping[str, int]
    attempts: int
    """HTTP requests sent, botocore's retries included."""
    item_writes: int
    item_reads: int
    """Keys asked for by ``BatchGetItem``/``GetItem`` (a key asked again counts again)."""
    statement_errors: int
    """Per-statement errors in ``BatchExecuteStatement`` answers (failed conditions, duplicate inserts)."""

    @property
    def api_calls(self) -> int:
        return sum(self.calls.values())


class CallCounter:
    """Counts operations, attempts, item writes and reads on the clients it is attached to. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._attempts = self._writes = self._reads = self._errors = 0

    def attach(self, client: BaseClient) -> None:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-parameter-build.{service}", self._on_call)
        client.meta.events.register(f"before-send.{service}", self._on_send)
        client.meta.events.register(f"after-call.{service}", self._on_answer)

    def counts(self) -> CallCounts:
        with self._lock:
            return CallCounts(dict(self._calls), self._attempts, self._writes, self._reads, self._errors)

    def _on_call(self, params: Mapping[str, Any], model: OperationModel, **_: Any) -> None:
        writes, reads = _items_of(model.name, params)
        with self._lock:
            self._calls[f"{model.service_model.service_name}.{model.name}"] += 1
            self._writes += writes
            self._reads += reads

    def _on_send(self, **_: Any) -> None:
        with self._lock:
            self._attempts += 1

    def _on_answer(self, parsed: Mapping[str, Any], model: OperationModel, **_: Any) -> None:
        if model.name == "BatchExecuteStatement":
            errors = sum(1 for answer in parsed.get("Responses", []) if answer.get("Error"))
            with self._lock:
                self._errors += errors


def _items_of(operation: str, params: Mapping[str, Any]) -> tuple[int, int]:
    """``(item writes, item reads)`` a DynamoDB request asks for; ``(0, 0)`` for anything else."""
    if operation == "BatchExecuteStatement":
        statements = params.get("Statements", [])
        reads = sum(1 for s in statements if s["Statement"].lstrip().upper().startswith("SELECT"))
        return len(statements) - reads, reads
    if operation == "BatchWriteItem":
        return sum(len(requests) for requests in params.get("RequestItems", {}).values()), 0
    if operation in {"PutItem", "UpdateItem", "DeleteItem"}:
        return 1, 0
    if operation == "BatchGetItem":
        return 0, sum(len(table.get("Keys", [])) for table in params.get("RequestItems", {}).values())
    return (0, 1) if operation == "GetItem" else (0, 0)


def _group_cpu_seconds(pgid: int | None) -> float | None:
    """CPU seconds used so far by every process of group ``pgid`` (Linux ``/proc``); ``None`` if unknown."""
    if pgid is None or not Path("/proc").is_dir():
        return None
    total, found = 0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # the process ended meanwhile
        rest = stat[stat.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
        if int(rest[2]) == pgid:  # pgrp; utime, stime, cutime and cstime are fields 14 to 17
            total += sum(int(value) for value in rest[11:15])
            found = True
    return total / os.sysconf("SC_CLK_TCK") if found else None


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One consumer over its events: wall and CPU seconds of the processing loop, and its calls."""

    events: int
    invocations: int
    wall_s: float
    cpu_s: float
    emulator_cpu_s: float | None
    """The emulator's CPU meanwhile (only when this run started it)."""
    calls: CallCounts
    writer: WriterStats | None = None
    """The writer's own stats summed over flushes (the project's consumer only)."""
    effects: int | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.events * 1e6

    @property
    def emulator_cpu_us(self) -> float | None:
        return None if self.emulator_cpu_s is None else self.emulator_cpu_s / self.events * 1e6

    def per_event(self, count: int) -> float:
        return count / self.events

    def to_json(self) -> dict[str, Any]:
        c = self.calls
        return {
            **asdict(self),
            "events_per_s": self.events_per_s,
            "cpu_us_per_event": self.cpu_us,
            "emulator_cpu_us_per_event": self.emulator_cpu_us,
            "api_calls": c.api_calls,
            "api_calls_per_event": self.per_event(c.api_calls),
            "http_attempts_per_event": self.per_event(c.attempts),
            "item_writes": c.item_writes,
            "item_writes_per_event": self.per_event(c.item_writes),
            "item_reads_per_event": self.per_event(c.item_reads),
        }


@dataclass(frozen=True, slots=True)
class FloorFigures:
    """The least any writer must do for these batches, and the consumer's CPU on the in-memory store."""

    events: int
    batches: int
    items: int
    """Sum over batches of the distinct ``(table, key)`` the batch's effects touch."""
    items_by_table: Mapping[str, int]
    messages: int
    """Sum over batches of the distinct ``(queue, dedup_id)`` the batch sends."""
    write_calls: int
    """Those items and messages in full calls: ``ceil(items / 25) + ceil(messages / 10)`` per batch."""
    effects: int
    cpu_s: float
    """Process CPU of the same processor on :class:`MemoryStore`: decode, plugins, coalescing, no AWS."""

    @property
    def items_per_event(self) -> float:
        return self.items / self.events

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.events * 1e6


@dataclass(frozen=True, slots=True)
class DedupFigures:
    """What the dedup window stored: items, their DynamoDB item size and write units, and its reads."""

    items: int
    bytes: int
    write_units: int
    """Sum over items of ``ceil(item size / 1 KB)``: DynamoDB's billing of a put."""
    queries: int


class DedupTap:
    """A :class:`~pipeline.consumer.dedup.DedupStore` that passes calls on and measures the items put."""

    def __init__(self, store: DedupStore) -> None:
        self._store = store
        self.items = self.bytes = self.write_units = self.queries = 0

    def recent(self, shard_id: str, since: float) -> Iterator[DedupItem]:
        self.queries += 1
        return self._store.recent(shard_id, since)

    def after(self, shard_id: str, key: str) -> list[DedupItem]:
        self.queries += 1
        return self._store.after(shard_id, key)

    def put(self, items: Sequence[DedupItem], ttl: float) -> None:
        self._store.put(items, ttl)
        for item in items:
            size = dedup_item_bytes(item, ttl)
            self.items += 1
            self.bytes += size
            self.write_units += math.ceil(size / 1024)

    def figures(self) -> DedupFigures:
        return DedupFigures(self.items, self.bytes, self.write_units, self.queries)


def dedup_item_bytes(item: DedupItem, ttl: float) -> int:
    """The item's size by DynamoDB's rules: attribute names plus values (numbers ~1 byte per 2 digits)."""
    numbers = len(repr(item.arrival).replace(".", "")) // 2 + 1 + len(str(int(ttl))) // 2 + 1
    names = len("shard") + len("batch") + len("arrival") + len("entries") + len("ttl")
    return names + len(item.shard_id.encode()) + len(item.key.encode()) + len(item.entries) + numbers


@dataclass(frozen=True, slots=True)
class ColdStartFigures:
    """Wall seconds of ``python -c CODE`` in a fresh process, best of ``rounds`` each."""

    rounds: int
    interpreter_s: float
    boto3_s: float
    handler_s: float
    handler_trace_disabled_s: float

    @property
    def ratio(self) -> float:
        return self.handler_s / self.boto3_s

    @property
    def ratio_trace_disabled(self) -> float:
        return self.handler_trace_disabled_s / self.boto3_s


@dataclass(frozen=True, slots=True)
class Verification:
    """The project's run against the oracle. ``problems`` is empty when everything matched."""

    tables: int
    items: int
    messages_expected: int
    messages_queued: int | None
    bad_rows: int
    effects_match: bool | None
    """Both passes produced the same number of effects (``None``: the real run retried a batch)."""
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class ConsumerBenchResult:
    """Everything one :func:`run` measured. ``to_json`` is the ``--json`` output (stable keys)."""

    events: int
    seed: int
    batch_size: int
    python: str
    endpoint: str
    embedded: bool
    project: RunFigures
    floor: FloorFigures
    seed_style: RunFigures
    cold_start: ColdStartFigures
    verification: Verification
    dedup: DedupFigures

    @property
    def item_writes_to_floor(self) -> float:
        return self.project.calls.item_writes / self.floor.items if self.floor.items else math.inf

    @property
    def speedup(self) -> float:
        return self.project.events_per_s / self.seed_style.events_per_s

    @property
    def targets(self) -> dict[str, Target]:
        p, cold, limit = self.project, self.cold_start, IMPORT_RATIO_TARGET
        return {
            "item_writes_vs_floor": Target(
                f"item writes <= {ITEM_WRITES_TARGET}x floor", self.item_writes_to_floor, ITEM_WRITES_TARGET, True
            ),
            "api_calls_per_event": Target(
                f"AWS API calls <= {API_CALLS_TARGET} per event", p.per_event(p.calls.api_calls), API_CALLS_TARGET, True
            ),
            "dedup_write_units_per_event": Target(
                f"dedup window <= {DEDUP_WRITE_UNITS_TARGET} extra write units per event",
                self.dedup.write_units / self.events,
                DEDUP_WRITE_UNITS_TARGET,
                True,
            ),
            "cpu_us_per_event": Target(f"consumer CPU <= {CPU_US_TARGET:g} us/event", p.cpu_us, CPU_US_TARGET, True),
            # The template's default (Tracing=PassThrough) deploys with POWERTOOLS_TRACE_DISABLED=true.
            "handler_import_ratio": Target(
                f"handler import <= {limit}x import boto3 (template default)", cold.ratio_trace_disabled, limit, True
            ),
            "handler_import_ratio_xray": Target(
                f"same with Tracing=Active (X-Ray SDK), <= {limit}x", cold.ratio, limit, True
            ),
        }

    def to_json(self) -> dict[str, Any]:
        f, cold = self.floor, self.cold_start
        return {
            "benchmark": "consumer",
            "events": self.events,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "record_format": RecordFormat.JSON.value,
            "python": self.python,
            "endpoint": self.endpoint,
            "embedded_emulator": self.embedded,
            "project": self.project.to_json(),
            "floor": {
                **asdict(f),
                "items_per_event": f.items_per_event,
                "write_calls_per_event": f.write_calls / f.events,
                "cpu_us_per_event": f.cpu_us,
            },
            "item_writes_to_floor": self.item_writes_to_floor,
            "seed_style": self.seed_style.to_json(),
            "speedup_vs_seed_style": self.speedup,
            "dedup": {
                **asdict(self.dedup),
                "write_units_per_event": self.dedup.write_units / self.events,
                "bytes_per_event": self.dedup.bytes / self.events,
            },
            "cold_start": {**asdict(cold), "ratio": cold.ratio, "ratio_trace_disabled": cold.ratio_trace_disabled},
            "targets": {
                key: {**asdict(t), "comparison": "<=" if t.at_most else ">=", "passed": t.passed}
                for key, t in self.targets.items()
            },
            "verification": {**asdict(self.verification), "passed": self.verification.passed},
        }


# --------------------------------------------------------------------------- the consumers under test


class _FlushTap:
    """A :class:`MetricWriter` that passes each flush on and keeps what it was given and what it cost."""

    def __init__(self, writer: MetricWriter, *, floor: bool = False) -> None:
        self._writer = writer
        self._floor = floor
        self.stats = WriterStats()
        self.effects = self.messages = self.write_calls = 0
        self.items: Counter[str] = Counter()

    def flush(self, shard_id: str, effects: Sequence[Positioned]) -> FlushResult:
        self.effects += len(effects)
        if self._floor:
            items = {(e.table, e.key) for p in effects if not isinstance(e := p.effect, Message)}
            messages = {(e.queue, e.dedup_id) for p in effects if isinstance(e := p.effect, Message)}
            self.items.update(table for table, _ in items)
            self.messages += len(messages)
            self.write_calls += math.ceil(len(items) / STATEMENTS_PER_CALL)
            self.write_calls += math.ceil(len(messages) / MESSAGES_PER_CALL)
        result = self._writer.flush(shard_id, effects)
        for f in fields(WriterStats):
            setattr(self.stats, f.name, getattr(self.stats, f.name) + getattr(result.stats, f.name))
        return result


class _Stopwatch:
    """Wall, this process's CPU and the emulator's CPU, from creation to :meth:`stop`.

    ``/proc`` is read outside the timed window on both ends, so its cost is not in this process's CPU.
    """

    def __init__(self, pgid: int | None) -> None:
        self._pgid = pgid
        self._emulator = _group_cpu_seconds(pgid)
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float, float | None]:
        wall, cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu
        now = _group_cpu_seconds(self._pgid)
        return wall, cpu, None if now is None or self._emulator is None else now - self._emulator


def _stream(events: Sequence[Event]) -> list[StreamRecord]:
    """Each event as its own json record on one shard, with increasing 56-digit sequence numbers."""
    return [
        StreamRecord(_SHARD, f"{49_000_000_000 + i:056d}", r.partition_key, r.data, _ARRIVAL + i / 1000)
        for i, r in enumerate(encode_records(events, RecordFormat.JSON))
    ]


def _floor(batches: Sequence[Sequence[StreamRecord]], events: int) -> FloorFigures:
    """The same processor on the in-memory store: distinct items per batch, and CPU without AWS."""
    store = MemoryMetricWriter(MemoryStore())
    tap = _FlushTap(store, floor=True)
    dedup = EventDeduplicator(MemoryDedupStore(), timedelta(hours=1))
    processor = BatchProcessor(REGISTRY, tap, ContextLoaderFromStore(store, REGISTRY), MemoryBadRowSink(), dedup)
    inputs = [
        [KinesisRecord(r.shard_id, r.sequence_number, r.data, datetime.fromtimestamp(r.arrival, tz=UTC)) for r in batch]
        for batch in batches
    ]
    started = time.process_time()
    for records in inputs:
        outcome = processor.process(records)
        if outcome.failed_sequence_number is not None:
            raise BenchCheckError(f"the in-memory pass failed a batch: {outcome.reason}")
    cpu = time.process_time() - started
    by_table = dict(tap.items.most_common())
    return FloorFigures(
        events, len(batches), sum(by_table.values()), by_table, tap.messages, tap.write_calls, tap.effects, cpu
    )


def _deliver(
    batch: Sequence[StreamRecord], event: dict[str, Any], processor: BatchProcessor, logger: Logger, metrics: Metrics
) -> int:
    """Invoke until the batch succeeds, restarting at the reported record as Lambda does; return the retries."""
    for retries in range(_MAX_RETRIES + 1):
        response = handle_kinesis_event(event, processor, logger, metrics)
        metrics.clear_metrics()  # as @metrics.log_metrics does after each invocation
        failures = response["batchItemFailures"]
        if not failures:
            return retries
        failed = failures[0]["itemIdentifier"]
        batch = batch[next(i for i, r in enumerate(batch) if r.sequence_number == failed) :]
        event = lambda_event(batch, _STREAM_ARN)
    raise BenchCheckError(f"a batch still failed after {_MAX_RETRIES} retries (from record {batch[0].sequence_number})")


def _project(
    settings: Settings,
    resources: Resources,
    batches: Sequence[Sequence[StreamRecord]],
    pgid: int | None,
    note: Callable[[str], None],
) -> tuple[RunFigures, int, DedupFigures]:
    """The project's consumer over every batch; its figures, how many invocations were retries, and
    what its dedup window stored."""
    clients = consumer_clients(settings)  # the same clients the handler builds
    dynamodb, sqs, s3 = clients.dynamodb, clients.sqs, clients.s3
    counter = CallCounter()
    for client in (dynamodb, sqs, s3):
        counter.attach(client)
    writer = DynamoMetricWriter(dynamodb, sqs, resources)
    tap = _FlushTap(writer)
    bad_rows = S3BadRowSink(s3, resources.bad_rows_bucket, resources.bad_rows_prefix)
    dedup_tap = DedupTap(DynamoDedupStore(dynamodb, resources.table("event_dedup")))
    dedup = EventDeduplicator(dedup_tap, timedelta(hours=1))
    # as build_processor wires it
    processor = BatchProcessor(REGISTRY, tap, ContextLoaderFromStore(writer, REGISTRY), bad_rows, dedup)
    logger = Logger(service="bench-consumer", level="CRITICAL")
    metrics = Metrics(namespace="Bench", service="bench-consumer")
    invocations = [lambda_event(batch, _STREAM_ARN) for batch in batches]
    retries = done = 0
    with writer:
        clock = _Stopwatch(pgid)
        for number, (batch, event) in enumerate(zip(batches, invocations, strict=True), start=1):
            retries += _deliver(batch, event, processor, logger, metrics)
            done += len(batch)
            if number % max(len(batches) // 5, 1) == 0 or number == len(batches):
                note(f"project consumer: {number}/{len(batches)} batches, {done:,} records")
        wall, cpu, emulator = clock.stop()
    figures = RunFigures(done, len(batches) + retries, wall, cpu, emulator, counter.counts(), tap.stats, tap.effects)
    return figures, retries, dedup_tap.figures()


def _seed_style(
    settings: Settings,
    resources: Resources,
    batches: Sequence[Sequence[StreamRecord]],
    pgid: int | None,
    note: Callable[[str], None],
) -> RunFigures:
    """The seed design's consumer over the same records: decode, then blocking calls per event."""
    dynamodb = aws_client("dynamodb", settings)
    counter = CallCounter()
    counter.attach(dynamodb)
    consumer = SeedStyleConsumer(dynamodb, resources)
    total, done = sum(len(batch) for batch in batches), 0
    clock = _Stopwatch(pgid)
    for batch in batches:
        results = (decode_record(r.data, r.shard_id, r.sequence_number) for r in batch)
        consumer.process([d.event for found in results for d in found if isinstance(d, DecodedEvent)])
        done += len(batch)
        note(f"seed-style consumer: {done:,}/{total:,} records")
    wall, cpu, emulator = clock.stop()
    return RunFigures(done, len(batches), wall, cpu, emulator, counter.counts())


# --------------------------------------------------------------------------- verification


def _decimal(value: object) -> object:
    return Decimal(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _scan(settings: Settings, resources: Resources) -> dict[str, dict[Any, dict[str, object]]]:
    """Every table the consumer writes, keyed like the oracle, without watermarks; numbers are Decimal."""
    dynamodb = aws_client("dynamodb", settings)
    deserializer = TypeDeserializer()
    out: dict[str, dict[Any, dict[str, object]]] = {}
    for name, spec in TABLES.items():
        if not spec.written_by_plugins:
            continue
        items: dict[Any, dict[str, object]] = {}
        for page in dynamodb.get_paginator("scan").paginate(TableName=resources.table(name), ConsistentRead=True):
            for raw in page["Items"]:
                item = {k: deserializer.deserialize(v) for k, v in raw.items() if not k.startswith(WATERMARK_PREFIX)}
                items[tuple((key, item[key]) for key in spec.keys)] = item
        if items:
            out[name] = items
    return out


def _verify(
    settings: Settings, resources: Resources, events: Sequence[Event], effects_match: bool | None
) -> Verification:
    """The project's tables, queue and bad-rows bucket against the oracle."""
    expected = {
        table: {
            tuple((k, _decimal(v)) for k, v in key): {a: _decimal(v) for a, v in item.items()}
            for key, item in items.items()
        }
        for table, items in expected_tables(events).items()
    }
    found = _scan(settings, resources)
    problems: list[str] = []
    for table in sorted(set(expected) | set(found)):
        want, got = expected.get(table, {}), found.get(table, {})
        missing, extra = [k for k in want if k not in got], [k for k in got if k not in want]
        wrong = [k for k in want if k in got and want[k] != got[k]]
        if missing or extra or wrong:
            problems.append(f"{table}: {len(missing)} missing, {len(extra)} unexpected, {len(wrong)} different items")
            if wrong:
                problems.append(f"  e.g. {dict(wrong[0])}: expected {want[wrong[0]]}, found {got[wrong[0]]}")
    attributes = (
        aws_client("sqs", settings)
        .get_queue_attributes(QueueUrl=resources.queues["fulfilment"], AttributeNames=["ApproximateNumberOfMessages"])
        .get("Attributes", {})
    )
    queued = int(attributes["ApproximateNumberOfMessages"]) if "ApproximateNumberOfMessages" in attributes else None
    wanted = len(expected_messages(events))
    if queued is not None and queued != wanted:
        problems.append(f"the fulfilment queue holds {queued} messages, expected {wanted}")
    bad_rows = int(aws_client("s3", settings).list_objects_v2(Bucket=resources.bad_rows_bucket).get("KeyCount", 0))
    if bad_rows:
        problems.append(f"{bad_rows} bad rows written for a workload of valid events")
    if effects_match is False:
        problems.append("the real run and the in-memory pass produced different numbers of effects")
    items = sum(len(table) for table in expected.values())
    return Verification(len(expected), items, wanted, queued, bad_rows, effects_match, tuple(problems))


# --------------------------------------------------------------------------- cold start


def _lambda_environment(*, trace_disabled: bool) -> dict[str, str]:
    """This environment without AWS, Powertools and pipeline settings, plus what the template gives the function."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PIPELINE_"))}
    env.update({spec.env: f"event-pipeline-bench-{name}" for name, spec in TABLES.items()})
    env.update({var: f"https://sqs.us-east-1.amazonaws.com/000000000000/bench-{q}.fifo" for q, var in QUEUES.items()})
    env.update(
        BAD_ROWS_BUCKET="event-pipeline-bench-bad-rows",
        BAD_ROWS_PREFIX="bad-rows/",
        AWS_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="event-pipeline",
        POWERTOOLS_METRICS_NAMESPACE="EventPipeline",
        POWERTOOLS_LOG_LEVEL="INFO",
    )
    if trace_disabled:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def _python_seconds(code: str, env: Mapping[str, str]) -> float:
    """Wall seconds of ``python -c code`` in a fresh process of this interpreter, from the repository root."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], cwd=_REPO, env=dict(env), capture_output=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise BenchCheckError(f"python -c {code!r} failed ({done.returncode}): {' | '.join(tail)}")
    return elapsed


def _cold_start(rounds: int, note: Callable[[str], None]) -> ColdStartFigures:
    traced, untraced = _lambda_environment(trace_disabled=False), _lambda_environment(trace_disabled=True)
    variants = {
        "interpreter": ("pass", traced),
        "boto3": ("import boto3", traced),
        "handler": ("import consumers.kinesis_consumer", traced),
        "handler_trace_disabled": ("import consumers.kinesis_consumer", untraced),
    }
    for code, env in variants.values():  # unrecorded: writes bytecode caches, fills the page cache
        _python_seconds(code, env)
    best = dict.fromkeys(variants, math.inf)
    for round_number in range(1, rounds + 1):
        note(f"cold start: round {round_number}/{rounds}")
        for name, (code, env) in variants.items():
            best[name] = min(best[name], _python_seconds(code, env))
    return ColdStartFigures(rounds, **{f"{name}_s": seconds for name, seconds in best.items()})


# --------------------------------------------------------------------------- the run


def run(
    events: int,
    seed: int,
    batch_size: int,
    seed_events: int,
    *,
    endpoint_url: str | None = None,
    cold_start_rounds: int = 5,
    progress: Callable[[str], None] | None = None,
) -> ConsumerBenchResult:
    """Measure everything the module docstring describes, in that order (the floor pass first).

    Raises :class:`ValueError` for a count below 1 or ``seed_events`` above ``events``;
    :class:`BenchCheckError` when the run itself fails; :class:`~pipeline.exceptions.EmulatorError`
    when the emulator does not start. Tables it creates are deleted again, whatever happens.
    """
    if min(events, batch_size, seed_events, cold_start_rounds) < 1 or seed_events > events:
        raise ValueError(
            "events, batch size, seed events and rounds must be at least 1, and seed events at most events; "
            f"got {events}, {batch_size}, {seed_events} and {cold_start_rounds}"
        )
    note = progress or (lambda _message: None)
    note(f"generating {events:,} reference events (seed {seed}), one json record each")
    workload = list(generate_events(events, seed))
    stream = _stream(workload)
    batches = [stream[i : i + batch_size] for i in range(0, events, batch_size)]
    seed_batches = [stream[i : min(i + batch_size, seed_events)] for i in range(0, seed_events, batch_size)]
    note("floor: the same batches through the same processor on the in-memory store")
    floor = _floor(batches, events)
    with emulator_settings(endpoint_url, note, "bench-consumer-") as (settings, _, pgid):
        resources = create_resources(settings)
        try:
            aws_client("s3", settings).create_bucket(Bucket=resources.bad_rows_bucket)
            project, retries, dedup = _project(settings, resources, batches, pgid, note)
            note("verifying the tables against pipeline.metrics.oracle.expected_tables")
            same = None if retries else project.effects == floor.effects
            verification = _verify(settings, resources, workload, same)
        finally:
            delete_resources(settings, resources)
        resources = create_resources(settings)
        try:
            seed_style = _seed_style(settings, resources, seed_batches, pgid, note)
        finally:
            delete_resources(settings, resources)
        endpoint = settings.endpoint_url or ""
    cold = _cold_start(cold_start_rounds, note)  # with the emulator stopped: it would compete for the CPU
    return ConsumerBenchResult(
        events,
        seed,
        batch_size,
        platform.python_version(),
        endpoint,
        endpoint_url is None,
        project,
        floor,
        seed_style,
        cold,
        verification,
        dedup,
    )


# --------------------------------------------------------------------------- output


def _per_event(figures: RunFigures, count: int) -> str:
    return f"{figures.per_event(count):.4f}"


def render_table(result: ConsumerBenchResult) -> str:
    """The human report: both consumers side by side, the floor, cold start, targets and verification."""
    p, s, f, cold, v = result.project, result.seed_style, result.floor, result.cold_start, result.verification
    d = result.dedup
    rows = [
        ("events", f"{p.events:,}", f"{s.events:,}"),
        ("Lambda invocations", f"{p.invocations:,}", f"{s.invocations:,}"),
        ("wall s", f"{p.wall_s:.2f}", f"{s.wall_s:.2f}"),
        ("events/s", f"{p.events_per_s:,.0f}", f"{s.events_per_s:,.0f}"),
        ("consumer CPU us/event", f"{p.cpu_us:.1f}", f"{s.cpu_us:.1f}"),
        ("emulator CPU us/event", *(_optional(x.emulator_cpu_us) for x in (p, s))),
        ("AWS API calls/event", *(_per_event(x, x.calls.api_calls) for x in (p, s))),
        ("HTTP attempts/event", *(_per_event(x, x.calls.attempts) for x in (p, s))),
        ("item writes/event", *(_per_event(x, x.calls.item_writes) for x in (p, s))),
        ("keys read/event", *(_per_event(x, x.calls.item_reads) for x in (p, s))),
        ("statement errors", f"{p.calls.statement_errors:,}", f"{s.calls.statement_errors:,}"),
    ]
    rows += [
        (f"  {operation}", f"{p.calls.calls.get(operation, 0):,}", f"{s.calls.calls.get(operation, 0):,}")
        for operation in sorted(set(p.calls.calls) | set(s.calls.calls))
    ]
    where = " (started for this run)" if result.embedded else ""
    lines = [
        f"consumer benchmark: {result.events:,} reference events (seed {result.seed}), one json record per event, "
        f"Lambda batches of {result.batch_size:,}; Python {result.python}",
        f"emulator: ministack {MINISTACK_VERSION} at {result.endpoint}{where}",
        "",
        f"{'':<34} {'project':>12} {'seed style':>12}",
        *(f"{label:<34} {a:>12} {b:>12}" if a else label for label, a, b in rows[:11]),
        "calls by operation:",
        *(f"{label:<34} {a:>12} {b:>12}" for label, a, b in rows[11:]),
    ]
    if p.writer is not None:
        w = p.writer
        lines += [
            "",
            f"the writer's own stats (flushes only): {w.api_calls:,} calls, {w.item_writes:,} item writes, "
            f"{w.reads:,} keys read, {w.conflicts:,} conflicts, {w.retries:,} retries, {w.messages:,} messages",
            f"on the wire beyond them (the batch context's reads): {p.calls.api_calls - w.api_calls:,} calls, "
            f"{p.calls.item_writes - w.item_writes:,} item writes, {p.calls.item_reads - w.reads:,} keys read",
        ]
    by_table = ", ".join(f"{table} {items / f.events:.3f}" for table, items in f.items_by_table.items())
    lines += [
        "",
        f"floor: distinct items each batch touches, summed over {f.batches:,} batches: {f.items:,} "
        f"= {f.items_per_event:.4f}/event",
        f"  by table (per event): {by_table}",
        f"  in full calls (25 statements, 10 messages): {f.write_calls:,} = {f.write_calls / f.events:.4f}/event",
        f"  item writes / floor: {result.item_writes_to_floor:.3f}x",
        f"  the same processor on the in-memory store (no AWS call): {f.cpu_us:.1f} us/event of CPU, so the "
        f"AWS calls cost this process {p.cpu_us - f.cpu_us:.1f} us/event",
        "",
        f"dedup window (event_dedup): {d.items:,} items, {d.bytes / result.events:.1f} bytes and "
        f"{d.write_units / result.events:.4f} write units per event (1 unit per started KB of an item), "
        f"{d.queries:,} queries",
        f"events/s (informational: on this emulator its own CPU bounds it): project {p.events_per_s:,.0f}, "
        f"seed style {s.events_per_s:,.0f} ({result.speedup:.1f}x)",
        "",
        f"cold start: wall time of a fresh 'python -c ...', best of {cold.rounds}, alternated:",
        f"  {'pass (the interpreter alone)':<54} {cold.interpreter_s:>7.3f} s",
        f"  {'import boto3':<54} {cold.boto3_s:>7.3f} s",
        f"  {'import consumers.kinesis_consumer (template default)':<54} {cold.handler_trace_disabled_s:>7.3f} s  "
        f"{cold.ratio_trace_disabled:.2f}x boto3",
        f"  {'  the same with Tracing=Active (X-Ray SDK imported)':<54} {cold.handler_s:>7.3f} s  "
        f"{cold.ratio:.2f}x boto3",
        "",
        "targets:",
    ]
    shown = {
        "item_writes_vs_floor": f"{result.item_writes_to_floor:.3f}x",
        "api_calls_per_event": f"{p.per_event(p.calls.api_calls):.4f}",
        "dedup_write_units_per_event": f"{d.write_units / result.events:.4f}",
        "cpu_us_per_event": f"{p.cpu_us:.1f} us",
        "handler_import_ratio": f"{cold.ratio_trace_disabled:.2f}x",
        "handler_import_ratio_xray": f"{cold.ratio:.2f}x",
    }
    for key, target in result.targets.items():
        lines.append(f"  {'PASS' if target.passed else 'FAIL'}  {target.label:<50} measured {shown[key]}")
    lines.append("")
    if v.passed:
        queued = "unknown" if v.messages_queued is None else f"{v.messages_queued:,}"
        lines.append(
            f"verification PASSED: the {v.tables} tables equal expected_tables(events) ({v.items:,} items); "
            f"fulfilment messages queued: {queued} of {v.messages_expected:,}; bad rows: {v.bad_rows}"
            + ("" if v.effects_match is None else "; both passes made the same effects")
        )
    else:
        lines += ["verification FAILED:", *(f"  {problem}" for problem in v.problems)]
    return "\n".join(lines)


def _optional(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


_HELP: Final = f"""\
what it runs (one run, one emulator, the reference workload, each event alone in a json record):
  project       the consumer as deployed: handle_kinesis_event -> BatchProcessor (every plugin, the
                batch context loader, DynamoMetricWriter, S3 bad rows) on real clients, one Lambda
                batch after another as for one shard; a partial failure restarts at the reported record
  floor         the same batches through the same processor on the in-memory store: the distinct items
                (table, key) each batch's effects touch, summed; no writer can write fewer items
  seed style    the source design's consumer (load/seed_consumer.py: one blocking UpdateItem, PutItem or
                GetItem or more per event) on the first --seed-events records, decoded by the same codec
  cold start    fresh 'python -c' processes with the template's environment: import boto3 against
                import consumers.kinesis_consumer, then the handler with POWERTOOLS_TRACE_DISABLED=true
figures:
  events/s              events / wall time of the processing loop
  consumer CPU us/event this process's CPU (every thread, so botocore's request building and answer
                        parsing are in) / events; the emulator is another process
  emulator CPU us/event the emulator's CPU meanwhile, from /proc (only when this run started it)
  calls, attempts, item writes, keys read
                        counted on the wire by botocore hooks on the consumer's clients, not by the
                        writer; the writer's own stats are printed beside them
context: before this work, with a simpler mix, the seed style made 2.29 calls per event at ~120 events/s.
targets (PASS/FAIL; they depend on the machine and never change the exit status):
  item writes <= {ITEM_WRITES_TARGET}x the floor; AWS API calls <= {API_CALLS_TARGET} per event;
  dedup window <= {DEDUP_WRITE_UNITS_TARGET} extra write units per event; consumer CPU <= {CPU_US_TARGET:g} us/event;
  handler import <= {IMPORT_RATIO_TARGET}x import boto3 (wall time of the whole process)
verification: after the project's run its tables must equal pipeline.metrics.oracle.expected_tables(events),
  the fulfilment queue must hold one message per completed order and the bad-rows bucket nothing;
  else exit 1. Exit 2: usage error."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=positive_int, default=10_000, help="reference events (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument("--batch-size", type=positive_int, default=1_000, help="records per invocation (default 1000)")
    parser.add_argument(
        "--seed-events", type=positive_int, default=3_000, help="records for the seed-style consumer (default 3000)"
    )
    parser.add_argument(
        "--endpoint-url", help="an emulator already running, e.g. http://127.0.0.1:4566 (default: start one)"
    )
    add_output_options(parser, _HELP)


_note = noter("consumer")


def cli(args: argparse.Namespace) -> int:
    """Run with the parsed options and print; 1 if the verification or the run fails, 2 for bad options."""
    try:
        result = run(
            args.events, args.seed, args.batch_size, args.seed_events, endpoint_url=args.endpoint_url, progress=_note
        )
    except ValueError as exc:
        print(f"pipeline bench consumer: {exc}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        print(f"pipeline bench consumer: the run failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")
    else:
        print(render_table(result))
    for problem in result.verification.problems:
        print(f"pipeline bench consumer: VERIFICATION FAILED: {problem.strip()}", file=sys.stderr)
    return 0 if result.verification.passed else 1
