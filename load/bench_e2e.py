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
The parts live in ``load/e2e_bench/`` (figures, runs, report).
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable

import orjson

from load.common import add_output_options, emulator_settings, noter, positive_int
from load.e2e_bench.figures import EndToEndBenchResult
from load.e2e_bench.report import HELP, render_table
from load.e2e_bench.runs import project_run, seed_style_run
from pipeline.codecs import RecordFormat
from pipeline.exceptions import PipelineError
from tools.generate import generate_events

__all__ = ["cli", "configure", "run"]
"""The parts (results, figures, report) are imported from their own modules under ``load/``."""


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
        project, verification = project_run(settings, workload, record_format, state_dir, note)
        verdict = "passed" if verification.passed else "FAILED"
        note(f"project: {project.events_per_s:,.0f} events/s end to end; verification {verdict}")
        seed_style = seed_style_run(settings, workload[:seed_events], record_format, state_dir, note)
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
    add_output_options(parser, HELP)


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
