"""The human report of a consumer benchmark, and the ``--help`` text that explains its figures."""

from __future__ import annotations

from typing import Final

from load.consumer_bench.figures import (
    API_CALLS_TARGET,
    CPU_US_TARGET,
    DEDUP_WRITE_UNITS_TARGET,
    IMPORT_RATIO_TARGET,
    ITEM_WRITES_TARGET,
    ConsumerBenchResult,
    RunFigures,
)
from load.consumer_bench.unit_report import units_section
from tools.local.emulator import MINISTACK_VERSION

__all__ = ["HELP", "render_table"]


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
    lines += units_section(dict(result.units), p.per_event(p.calls.item_writes))
    return "\n".join(lines)


def _optional(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


HELP: Final = f"""\
what it runs (one run, one emulator, the reference workload, each event alone in a json record):
  project       the consumer as deployed: build_consumer (every plugin, the batch context loader,
                DynamoMetricWriter, the dedup window, S3 bad rows) on real clients, Consumer.handle
                one Lambda batch after another as for one shard; a partial failure restarts at the
                reported record
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
verification: after the project's run its tables must equal tools.oracle.expected_tables(events),
  the fulfilment queue must hold one message per completed order and the bad-rows bucket nothing;
  else exit 1. Exit 2: usage error."""
