"""``pipeline bench e2e``: events/s from the producer to the metrics tables, on the embedded stack.

One run, one emulator, one workload (``generate_events(events, seed)``), one record format, two
fresh stacks deployed from ``template.yaml`` one after the other:

1. **The project.** :class:`~tools.local.demo_run.DemoRun` as ``pipeline demo`` runs it: the
   :class:`~producers.Producer` publishes in a thread while the local event source drives the deployed
   handler (``consumers/kinesis_consumer.py``) with Lambda's semantics; then every table is checked
   against ``tools.oracle``. The verification must pass, else the benchmark exits 1.
2. **The seed style.** The first ``seed_events`` events of the same workload, the same producer, stream
   type, event source settings and format, but the event source invokes the source design's Lambda:
   decode every record of the event (:func:`pipeline.codecs.decode_record`), then
   :class:`~load.seed_consumer.SeedStyleConsumer` (blocking calls per event). Not verified: it is not
   idempotent, and exactness is not what it is measured for.

Time: wall clock (``perf_counter``) from the moment the producer thread starts to the moment the local
event source has finished the last batch (the handler returns only after its writes are acknowledged,
so that is the last metric written). Deploying, verifying and deleting the stacks are outside it.
DynamoDB requests are HTTP requests (botocore's retries included) counted by a ``before-send`` hook on
the consumer's DynamoDB client; the verification's scans use another client and are not counted.

The figures depend on the machine, and the emulator runs on the same one. Without ``endpoint_url``
an emulator is started in a temporary directory and stopped after; both stacks are deleted whatever
happens. Not thread-safe.
"""

from __future__ import annotations

import argparse
import base64
import platform
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from load.common import add_output_options, emulator_settings, noter, positive_int
from load.seed_consumer import SeedStyleConsumer
from pipeline.codecs import DecodedEvent, RecordFormat, decode_record
from pipeline.events import Event
from pipeline.exceptions import DeliveryError, PipelineError
from pipeline.settings import Settings, aws_client
from producers import Producer
from tools.generate import generate_events
from tools.local.demo_run import DemoRun
from tools.local.emulator import MINISTACK_VERSION
from tools.local.runtime import LocalEventSource
from tools.local.stack import StackInfo, deploy, destroy

__all__ = [
    "BenchRunError",
    "EndToEndBenchResult",
    "EndToEndFigures",
    "Verification",
    "cli",
    "configure",
    "render_table",
    "run",
]

_NOTE_EVERY_S: Final = 1.0


class BenchRunError(PipelineError):
    """The run itself went wrong (nothing consumed, events lost on the way): the figures mean nothing."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class EndToEndFigures:
    """One consumer's run: its events from the producer's start to the last batch done, and what it cost."""

    stack: str
    events: int
    kinesis_records: int
    """Records the producer put (a ``gzip-batch`` or KPL record carries many events)."""
    wall_s: float
    dynamodb_requests: int
    put_records_calls: int
    invocations: int
    function_errors: int
    partial_failures: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    def per_event(self, count: int) -> float:
        return count / self.events

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "events_per_s": self.events_per_s,
            "dynamodb_requests_per_event": self.per_event(self.dynamodb_requests),
            "put_records_calls_per_event": self.per_event(self.put_records_calls),
            "invocations_per_event": self.per_event(self.invocations),
        }


@dataclass(frozen=True, slots=True)
class Verification:
    """The project's tables, fulfilment queue, bad rows and on-failure queue against the oracle."""

    item_counts: dict[str, int]
    fulfilment_messages: int
    bad_rows: int
    discarded_batches: int
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class EndToEndBenchResult:
    """Everything one :func:`run` measured. ``to_json`` is the ``--json`` output (stable keys)."""

    events: int
    seed_events: int
    seed: int
    record_format: RecordFormat
    python: str
    endpoint: str
    embedded: bool
    project: EndToEndFigures
    seed_style: EndToEndFigures
    verification: Verification

    def ratios(self) -> dict[str, float]:
        """Project over seed style: of events/s, and of each count per event."""
        p, s = self.project, self.seed_style
        return {
            "events_per_s": p.events_per_s / s.events_per_s,
            "dynamodb_requests_per_event": _ratio(p.per_event(p.dynamodb_requests), s.per_event(s.dynamodb_requests)),
            "put_records_calls_per_event": _ratio(p.per_event(p.put_records_calls), s.per_event(s.put_records_calls)),
            "invocations_per_event": _ratio(p.per_event(p.invocations), s.per_event(s.invocations)),
        }

    def to_json(self) -> dict[str, Any]:
        v = self.verification
        return {
            "benchmark": "e2e",
            "events": self.events,
            "seed_events": self.seed_events,
            "seed": self.seed,
            "record_format": self.record_format.value,
            "python": self.python,
            "emulator": f"ministack {MINISTACK_VERSION}",
            "endpoint": self.endpoint,
            "embedded_emulator": self.embedded,
            "project": self.project.to_json(),
            "seed_style": self.seed_style.to_json(),
            "project_to_seed_style": self.ratios(),
            "verification": {**asdict(v), "problems": list(v.problems), "passed": v.passed},
        }


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# --------------------------------------------------------------------------- timing


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


# --------------------------------------------------------------------------- the two runs


def _project(
    settings: Settings,
    events: Sequence[Event],
    record_format: RecordFormat,
    state_dir: Path,
    note: Callable[[str], None],
) -> tuple[EndToEndFigures, Verification]:
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


def _seed_style(
    settings: Settings,
    events: Sequence[Event],
    record_format: RecordFormat,
    state_dir: Path,
    note: Callable[[str], None],
) -> EndToEndFigures:
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


# --------------------------------------------------------------------------- the run


def run(
    events: int,
    seed: int,
    record_format: RecordFormat,
    seed_events: int,
    *,
    endpoint_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> EndToEndBenchResult:
    """Measure both runs the module docstring describes, the project's first.

    Raises :class:`ValueError` for a count below 1 or ``seed_events`` above ``events``;
    :class:`BenchRunError` when a run loses events; :class:`~pipeline.exceptions.DeliveryError` when the
    producer gives up; :class:`~tools.local.stack.StackError` when a stack does not deploy;
    :class:`~pipeline.exceptions.EmulatorError` when the emulator does not start.
    """
    if min(events, seed_events) < 1 or seed_events > events:
        raise ValueError(
            f"events and seed events must be at least 1, seed events at most events; got {events}, {seed_events}"
        )
    note = progress or (lambda _message: None)
    note(f"generating {events:,} reference events (seed {seed}), record format {record_format.value}")
    workload = list(generate_events(events, seed))
    with emulator_settings(endpoint_url, note, "bench-e2e-") as (settings, state_dir, _):
        project, verification = _project(settings, workload, record_format, state_dir, note)
        verdict = "passed" if verification.passed else "FAILED"
        note(f"project: {project.events_per_s:,.0f} events/s end to end; verification {verdict}")
        seed_style = _seed_style(settings, workload[:seed_events], record_format, state_dir, note)
        note(f"seed style: {seed_style.events_per_s:,.0f} events/s")
    return EndToEndBenchResult(
        events,
        seed_events,
        seed,
        record_format,
        platform.python_version(),
        settings.endpoint_url or "",
        endpoint_url is None,
        project,
        seed_style,
        verification,
    )


# --------------------------------------------------------------------------- output


def render_table(result: EndToEndBenchResult) -> str:
    """The human report: both runs side by side, the project/seed ratios, the verification."""
    p, s, v, ratio = result.project, result.seed_style, result.verification, result.ratios()
    rows = [
        ("events", f"{p.events:,}", f"{s.events:,}", ""),
        ("Kinesis records", f"{p.kinesis_records:,}", f"{s.kinesis_records:,}", ""),
        ("wall s (producer start -> last batch)", f"{p.wall_s:.2f}", f"{s.wall_s:.2f}", ""),
        ("events/s end to end", f"{p.events_per_s:,.0f}", f"{s.events_per_s:,.0f}", f"{ratio['events_per_s']:.1f}x"),
        ("DynamoDB requests", f"{p.dynamodb_requests:,}", f"{s.dynamodb_requests:,}", ""),
        (
            "DynamoDB requests/event",
            f"{p.per_event(p.dynamodb_requests):.4f}",
            f"{s.per_event(s.dynamodb_requests):.4f}",
            f"{ratio['dynamodb_requests_per_event']:.4f}x",
        ),
        (
            "producer PutRecords calls",
            f"{p.put_records_calls:,}",
            f"{s.put_records_calls:,}",
            f"{ratio['put_records_calls_per_event']:.2f}x",
        ),
        ("consumer invocations", f"{p.invocations:,}", f"{s.invocations:,}", f"{ratio['invocations_per_event']:.2f}x"),
        ("  function errors", f"{p.function_errors:,}", f"{s.function_errors:,}", ""),
    ]
    where = " (started for this run)" if result.embedded else ""
    lines = [
        f"end-to-end benchmark: producer -> Kinesis -> local event source -> consumer -> DynamoDB, "
        f"record format {result.record_format.value}; Python {result.python}",
        f"workload: {result.events:,} reference events (seed {result.seed}); the seed style gets the first "
        f"{result.seed_events:,}; each run on a fresh stack",
        f"emulator: ministack {MINISTACK_VERSION} at {result.endpoint}{where}",
        "",
        f"{'':<40} {'project':>10} {'seed style':>11} {'project/seed':>13}",
        *(f"{label:<40} {a:>10} {b:>11} {r:>13}" for label, a, b, r in rows),
        "project/seed: of events/s, and of each count per event",
        "",
    ]
    if v.passed:
        items = sum(v.item_counts.values())
        lines.append(
            f"verification PASSED: the project's {len(v.item_counts)} tables equal the oracle's ({items:,} items); "
            f"fulfilment messages {v.fulfilment_messages:,}; bad rows {v.bad_rows}; discarded batches "
            f"{v.discarded_batches}"
        )
    else:
        lines += ["verification FAILED:", *(f"  {problem}" for problem in v.problems)]
    return "\n".join(lines)


_HELP: Final = """\
what it runs (one emulator, the reference workload, each run on a fresh stack from template.yaml):
  project      pipeline demo's run: the Producer publishes in a thread while the local event source
               drives the deployed handler (consumers/kinesis_consumer.py) with Lambda's semantics;
               then every table is checked against tools.oracle
  seed style   the first --seed-events events, same producer, stream, event source settings and format;
               the handler decodes each record (pipeline.codecs.decode_record) and calls
               load/seed_consumer.py's SeedStyleConsumer (blocking UpdateItem/PutItem/GetItem per event)
figures:
  wall s               from the producer thread's start to the end of the last batch the event source
                       delivered (the handler returns after its writes); deploy and verify are outside
  events/s             events / wall s
  DynamoDB requests    HTTP requests of the consumer's DynamoDB client (retries included)
  project/seed         ratio of events/s, and of each count per event
verification: the project's tables must equal tools.oracle's, the fulfilment queue must hold
  one message per completed order, no bad row, no discarded batch; else exit 1. The seed style is not
  verified (not idempotent). Exit 2: usage error."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=positive_int, default=10_000, help="reference events (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument(
        "--format",
        choices=[f.value for f in RecordFormat],
        default=RecordFormat.GZIP_BATCH.value,
        help="record format (default gzip-batch)",
    )
    parser.add_argument(
        "--seed-events", type=positive_int, default=2_000, help="events for the seed-style run (default 2000)"
    )
    parser.add_argument(
        "--endpoint-url", help="an emulator already running, e.g. http://127.0.0.1:4566 (default: start one)"
    )
    add_output_options(parser, _HELP)


_note = noter("e2e")


def cli(args: argparse.Namespace) -> int:
    """Run with the parsed options and print; 1 if the verification or the run fails, 2 for bad options."""
    try:
        result = run(
            args.events,
            args.seed,
            RecordFormat(args.format),
            args.seed_events,
            endpoint_url=args.endpoint_url,
            progress=_note,
        )
    except ValueError as exc:
        print(f"pipeline bench e2e: {exc}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        print(f"pipeline bench e2e: the run failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")
    else:
        print(render_table(result))
    for problem in result.verification.problems:
        print(f"pipeline bench e2e: VERIFICATION FAILED: {problem.strip()}", file=sys.stderr)
    return 0 if result.verification.passed else 1
