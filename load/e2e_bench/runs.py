"""The two runs of the end-to-end benchmark, each on a fresh stack deployed from ``template.yaml``.

- :func:`project_run` is :class:`~tools.local.demo_run.DemoRun` as ``pipeline demo`` runs it, timed
  from the producer's start to the last batch, and verified against ``tools.oracle``.
- :func:`seed_style_run` sends the same events with the same producer, but the local event source
  invokes the source design's Lambda (:class:`~load.seed_consumer.SeedStyleConsumer` behind a decode of
  every record); its stack is deleted whatever happens.

Not thread-safe: each run starts a producer thread of its own and joins it before returning.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from load.e2e_bench.figures import EndToEndFigures, Verification
from load.seed_consumer import SeedStyleConsumer
from pipeline.codecs import DecodedEvent, RecordFormat, decode_record
from pipeline.events import Event
from pipeline.exceptions import DeliveryError, PipelineError
from pipeline.settings import Settings, aws_client
from producers import Producer
from tools.local.demo_run import DemoRun
from tools.local.runtime import LocalEventSource
from tools.local.stack import StackInfo, deploy, destroy

__all__ = ["BenchRunError", "project_run", "seed_style_run"]

_NOTE_EVERY_S: Final = 1.0


class BenchRunError(PipelineError):
    """The run itself went wrong (nothing consumed, events lost on the way): the figures mean nothing."""


class _RunClock:
    """Stamps of one run: the producer's start and the end of the last batch; progress notes on the way.

    ``producer_started`` is called on the producer's thread before the thread is joined;
    ``batch_done`` on the event source's (the caller's) thread.
    """

    def __init__(self, label: str, note: Callable[[str], None]) -> None:
        self._label = label
        self._note = note
        self._noted = 0.0
        self.started: float | None = None
        self.last_batch: float | None = None
        self.records = 0

    def producer_started(self) -> None:
        self.started = time.perf_counter()

    def batch_done(self, records: int) -> None:
        self.last_batch = time.perf_counter()
        self.records += records
        if self.last_batch - self._noted >= _NOTE_EVERY_S:
            self._noted = self.last_batch
            self._note(f"{self._label}: Kinesis records consumed so far: {self.records:,}")

    def wall_s(self) -> float:
        if self.started is None or self.last_batch is None:
            raise BenchRunError(f"{self._label}: the producer never started or nothing was consumed")
        return self.last_batch - self.started


def project_run(
    settings: Settings,
    events: Sequence[Event],
    record_format: RecordFormat,
    state_dir: Path,
    note: Callable[[str], None],
) -> tuple[EndToEndFigures, Verification]:
    """The project's run on a fresh stack (deployed, verified and deleted by ``DemoRun``), and its verification."""
    clock = _RunClock("project", note)
    # The run's own elapsed_s includes deploying, verifying and deleting the stack: time produce -> last batch.
    demo = DemoRun(state_dir, record_format=record_format, endpoint_url=settings.endpoint_url)
    note(f"project: fresh stack, producing {len(events):,} events while the deployed handler consumes them")
    summary = demo.run(events, [], on_records=clock.batch_done, on_produce_start=clock.producer_started)
    figures = EndToEndFigures(
        stack=summary.stack,
        events=summary.events_sent,
        kinesis_records=summary.producer["records"],
        wall_s=clock.wall_s(),
        dynamodb_requests=summary.dynamodb_requests,
        put_records_calls=summary.producer["put_calls"],
        invocations=summary.invocations,
        function_errors=summary.function_errors,
        partial_failures=summary.partial_failures,
    )
    verification = Verification(
        item_counts={table: len(items) for table, items in summary.tables.items()},
        fulfilment_messages=summary.fulfilment_messages,
        bad_rows=len(summary.bad_rows),
        discarded_batches=summary.discarded_batches,
        problems=tuple(summary.problems),
    )
    return figures, verification


class _SeedStyleHandler:
    """The source design's Lambda: decode every record of the event, then one ``SeedStyleConsumer.process``.

    It answers no batch item failures (the seed design had none): an exception is a function error and
    the whole batch comes again, counted again. ``events`` counts the events handed to the consumer.
    """

    def __init__(self, consumer: SeedStyleConsumer) -> None:
        self._consumer = consumer
        self.events = 0
        self.undecodable = 0

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        decoded: list[Event] = []
        for record in event["Records"]:
            kinesis = record["kinesis"]
            shard_id = str(record["eventID"]).split(":", 1)[0]
            for result in decode_record(base64.b64decode(kinesis["data"]), shard_id, kinesis["sequenceNumber"]):
                if isinstance(result, DecodedEvent):
                    decoded.append(result.event)
                else:
                    self.undecodable += 1
        self._consumer.process(decoded)
        self.events += len(decoded)
        return {"batchItemFailures": []}


def _send(
    kinesis: Any,
    stream: str,
    events: Sequence[Event],
    record_format: RecordFormat,
    clock: _RunClock,
    out: dict[str, Any],
) -> None:
    """The producer thread of the seed-style run, as :class:`DemoRun` runs its own."""
    clock.producer_started()
    try:
        with Producer(stream, kinesis, record_format=record_format) as producer:
            producer.put_many(events)
        out["stats"] = producer.stats.as_dict()
    except DeliveryError as exc:
        out["error"] = exc


def seed_style_run(
    settings: Settings,
    events: Sequence[Event],
    record_format: RecordFormat,
    state_dir: Path,
    note: Callable[[str], None],
) -> EndToEndFigures:
    """The seed style's run on a fresh stack, deleted whatever happens; :class:`BenchRunError` if events are lost."""
    stage = f"seed{int(time.time() * 1000) % 10**10}"
    note(f"seed style: fresh stack, producing {len(events):,} events while the seed-style handler consumes them")
    info = deploy(settings, stage=stage)
    try:
        return _seed_style_on(settings, info, events, record_format, state_dir / f"consumer-{stage}.log", note)
    finally:
        destroy(settings, stage, empty_buckets=True)


def _seed_style_on(
    settings: Settings,
    info: StackInfo,
    events: Sequence[Event],
    record_format: RecordFormat,
    log_path: Path,
    note: Callable[[str], None],
) -> EndToEndFigures:
    stream = info.outputs["StreamName"]
    dynamodb = aws_client("dynamodb", settings)  # once per container, as the seed's module scope did
    requests = [0]

    def count(**_: Any) -> None:
        requests[0] += 1

    dynamodb.meta.events.register("before-send.dynamodb", count)
    handler = _SeedStyleHandler(SeedStyleConsumer(dynamodb, info.resources()))
    clock = _RunClock("seed style", note)
    produced: dict[str, Any] = {}
    kinesis = aws_client("kinesis", settings)
    sender = threading.Thread(
        target=_send,
        args=(aws_client("kinesis", settings.with_(max_attempts=1)), stream, events, record_format, clock, produced),
    )
    sender.start()
    source = LocalEventSource(
        kinesis,
        stream,
        handler,
        info.esm_settings(),
        sqs=aws_client("sqs", settings),
        on_failure_queue_url=info.outputs.get("ConsumerFailureQueueUrl"),
        log_path=log_path,
        region=settings.region,
    )
    try:
        drained = source.drain(keep_going=sender.is_alive, on_batch=clock.batch_done)
    finally:
        sender.join()
    if "error" in produced:
        raise produced["error"]
    if handler.events < len(events) or handler.undecodable:
        raise BenchRunError(
            f"seed style: {len(events):,} events sent, {handler.events:,} consumed, {handler.undecodable} undecodable"
        )
    stats = produced["stats"]
    return EndToEndFigures(
        stack=info.stack_name,
        events=len(events),
        kinesis_records=stats["records"],
        wall_s=clock.wall_s(),
        dynamodb_requests=requests[0],
        put_records_calls=stats["put_calls"],
        invocations=drained.total("invocations"),
        function_errors=drained.total("function_errors"),
        partial_failures=drained.total("partial_failures"),
    )
