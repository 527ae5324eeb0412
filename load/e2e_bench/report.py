"""The human report of an end-to-end benchmark, and the ``--help`` text that explains its figures."""

from __future__ import annotations

from typing import Final

from load.e2e_bench.figures import EndToEndBenchResult
from tools.local.emulator import MINISTACK_VERSION

__all__ = ["HELP", "render_table"]


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


HELP: Final = """\
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
