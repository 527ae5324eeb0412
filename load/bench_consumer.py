"""``pipeline bench consumer``: what the Kinesis consumer costs per event, against its floor and the seed design.

One run, one emulator, one workload (``generate_events(events, seed)``), every event encoded alone as
a json record (one event per record: the consumer's worst case), cut into Lambda batches of
``batch_size`` records:

0. **Capacity units** (``load/consumer_bench/unit_report.py``): write and read units per event and per
   table by DynamoDB's billing rules, metered in memory by the same write engine, for the project at
   this batch size and at 10,000 records, for the densest format's largest invocations (6 MB), and for
   the seed style, on the same events (``--units-events``, default ``--events``); with ``--shards``,
   the many-shards case (S shards writing the same hot items, batches of 100 events) and its ratio
   to one shard's write units per event.
1. **The project's consumer.** Fresh tables; the batches go one after another, as Lambda delivers one
   shard, through ``Consumer.handle`` of the consumer ``build_consumer`` builds (what
   ``consumers/kinesis_consumer.py`` runs: every plugin, ``DynamoMetricWriter``, the batch context
   loader, the dedup window on its ``event_dedup`` table, S3 bad rows) on real clients. A partial
   failure restarts the batch at the record it reports, as Lambda would. The dedup window's items
   are measured on the wire: their DynamoDB write units (one unit per started KB of each item) per
   event.
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

Verification (``tools.verify``, as the demo's): after the project's run, every table is scanned and
must equal ``tools.oracle.expected_tables(events)``; the fulfilment queue must hold one message per
completed order and the bad-rows bucket nothing. Otherwise the benchmark exits 1.
Not thread-safe; it starts subprocesses and, without ``--endpoint-url``, an emulator it stops again.
The parts live in ``load/consumer_bench/`` (counting, figures, runs, cold start, report).
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable, Sequence

import orjson

from load.common import add_output_options, emulator_settings, noter, positive_int
from load.consumer_bench.coldstart import cold_start
from load.consumer_bench.figures import ConsumerBenchResult, Verification
from load.consumer_bench.report import HELP, render_table
from load.consumer_bench.runs import floor_run, project_run, seed_style_run, stream_of
from load.consumer_bench.unit_report import measure_units
from pipeline.events import Event
from pipeline.exceptions import PipelineError
from pipeline.metrics.tables import Resources
from pipeline.settings import Settings, aws_client
from tools.generate import generate_events
from tools.local.provision import create_resources, delete_resources
from tools.oracle import expected_messages, expected_tables
from tools.verify import bad_rows, differences, numbers_as_decimal, scan_tables

__all__ = ["cli", "configure", "run"]
"""The parts (results, figures, report) are imported from their own modules under ``load/``."""


def _verify(
    settings: Settings, resources: Resources, events: Sequence[Event], effects_match: bool | None
) -> Verification:
    """The project's tables, queue and bad-rows bucket against the oracle (``tools.verify``)."""
    expected = numbers_as_decimal(expected_tables(events))
    problems = differences(scan_tables(aws_client("dynamodb", settings), resources), expected)
    attributes = (
        aws_client("sqs", settings)
        .get_queue_attributes(QueueUrl=resources.queues["fulfilment"], AttributeNames=["ApproximateNumberOfMessages"])
        .get("Attributes", {})
    )
    queued = int(attributes["ApproximateNumberOfMessages"]) if "ApproximateNumberOfMessages" in attributes else None
    wanted = len(expected_messages(events))
    if queued is not None and queued != wanted:
        problems.append(f"the fulfilment queue holds {queued} messages, expected {wanted}")
    rows = len(bad_rows(aws_client("s3", settings), resources.bad_rows_bucket, ""))
    if rows:
        problems.append(f"{rows} bad rows written for a workload of valid events")
    if effects_match is False:
        problems.append("the real run and the in-memory pass produced different numbers of effects")
    items = sum(len(table) for table in expected.values())
    return Verification(len(expected), items, wanted, queued, rows, effects_match, tuple(problems))


def run(
    events: int,
    seed: int,
    batch_size: int,
    seed_events: int,
    *,
    endpoint_url: str | None = None,
    cold_start_rounds: int = 5,
    units_events: int | None = None,
    shards: Sequence[int] = (),
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
    stream = stream_of(workload)
    batches = [stream[i : i + batch_size] for i in range(0, events, batch_size)]
    seed_batches = [stream[i : min(i + batch_size, seed_events)] for i in range(0, seed_events, batch_size)]
    note("floor: the same batches through the same processor on the in-memory store")
    floor = floor_run(batches, events)
    units_workload = (
        workload if not units_events or units_events == events else list(generate_events(units_events, seed))
    )
    units = measure_units(units_workload, batch_size, note, shards)
    with emulator_settings(endpoint_url, note, "bench-consumer-") as (settings, _, pgid):
        resources = create_resources(settings)
        try:
            aws_client("s3", settings).create_bucket(Bucket=resources.bad_rows_bucket)
            project, retries = project_run(settings, resources, batches, pgid, note)
            note("verifying the tables against tools.oracle.expected_tables")
            same = None if retries else project.effects == floor.effects
            verification = _verify(settings, resources, workload, same)
        finally:
            delete_resources(settings, resources)
        resources = create_resources(settings)
        try:
            seed_style = seed_style_run(settings, resources, seed_batches, pgid, note)
        finally:
            delete_resources(settings, resources)
        endpoint = settings.endpoint_url or ""
    cold = cold_start(cold_start_rounds, note)  # with the emulator stopped: it would compete for the CPU
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
        units,
    )


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
    parser.add_argument(
        "--units-events",
        type=positive_int,
        help="reference events for the capacity-units cases (default: --events; 200000 fills 6 MB invocations)",
    )
    parser.add_argument(
        "--shards",
        type=_shard_counts,
        default=(),
        help="also meter S shards writing the same hot items, e.g. 1,10,100,1000 (needs (S+1)*100 units events; "
        "1,000 shards take about a minute)",
    )
    add_output_options(parser, HELP)


_note = noter("consumer")


def _shard_counts(text: str) -> tuple[int, ...]:
    """``1,10,100`` as shard counts (argparse turns the ValueError into a one-line usage error)."""
    counts = tuple(int(part) for part in text.split(",") if part.strip())
    if not counts or min(counts) < 1:
        raise ValueError(f"shard counts are positive integers separated by commas, not {text!r}")
    return counts


def cli(args: argparse.Namespace) -> int:
    """Run with the parsed options and print; 1 if the verification or the run fails, 2 for bad options."""
    try:
        result = run(
            args.events,
            args.seed,
            args.batch_size,
            args.seed_events,
            endpoint_url=args.endpoint_url,
            units_events=args.units_events,
            shards=args.shards,
            progress=_note,
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
