"""``pipeline demo``: the main job. The whole pipeline on the embedded stack, verified.

Starts (or reuses) the emulator, deploys ``template.yaml`` into it as a fresh stack, seeds the
input's users and ordered products in the entity stores (the single table; the SQL store on a
throwaway PostgreSQL), publishes every event but the orders through the producer, places the orders
through the stores (their events reach the stream only by change data capture: table stream ->
bridge, outbox -> relay) while the local event source drives the deployed consumer handler, and when
the stream is drained verifies every metrics table against the oracle computed from the published
events and from what the stores committed. ``--fault-rate`` injects PutRecords partial failures and
throttles on the producer, throttles on the consumer's DynamoDB calls, and handler crashes (before,
during and after writes).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

import orjson

from pipeline.codecs import RecordFormat
from pipeline.events import Event, decode_event
from pipeline.exceptions import DeliveryError, EventValidationError
from tools.cli.args import endpoint_url, fraction, positive_int
from tools.cli.io import Progress, open_input
from tools.generate import generate_events
from tools.local.demo_run import DemoRun
from tools.local.demo_summary import DemoSummary
from tools.local.state import default_state_dir

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--events", type=positive_int, default=10_000, help="generated events to send (default 10000)")
    source.add_argument(
        "--input", help="send this NDJSON file instead (malformed lines are sent as-is and must become bad rows)"
    )
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument(
        "--format", choices=[f.value for f in RecordFormat], default="json", help="record format (default json)"
    )
    parser.add_argument(
        "--fault-rate",
        type=fraction,
        default=0.0,
        help="inject faults at this rate: PutRecords entry failures and throttles, DynamoDB throttles, "
        "handler crashes (default 0)",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=default_state_dir(), help="emulator record, logs (default: as pipeline up)"
    )
    parser.add_argument(
        "--endpoint-url",
        type=endpoint_url,
        help="use the emulator at this URL instead of starting (or reusing) the recorded one",
    )
    parser.add_argument(
        "--stock",
        type=positive_int,
        default=40,
        help="units of each ordered product in each store at the start; orders beyond it are rejected "
        "for stock (default 40)",
    )
    parser.add_argument(
        "--no-sql", action="store_true", help="place every order in the single table (no PostgreSQL, no outbox)"
    )
    stores = parser.add_mutually_exclusive_group()
    stores.add_argument(
        "--stores",
        dest="stores",
        action="store_true",
        default=None,
        help="orders through the entity stores and CDC (the default for generated events)",
    )
    stores.add_argument(
        "--no-stores",
        dest="stores",
        action="store_false",
        help="every event through the producer as it is, orders included (the default for --input: a file's "
        "lines are sent as they are)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the stack (and a newly started emulator) running; the demo's PostgreSQL is stopped either way",
    )
    parser.add_argument(
        "--windows",
        choices=["flink", "reference", "off"],
        default="flink",
        help="windowed analytics over the archive: the Flink job verified against the Python reference "
        "(default; the reference alone when Flink cannot run here, and the summary says why), the "
        "reference alone, or none",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON, with table contents and bad rows"
    )
    parser.epilog = (
        "With generated events, users and ordered products are seeded in the entity stores and the orders are "
        "placed through them: their events reach the stream only by change data capture, and the oracle for "
        "orders is what the stores committed (--no-stores: every event through the producer). "
        "Exit status 0 when every metrics table equals the counts computed directly from the input, "
        "1 on any mismatch (tables, archive, bad rows, fulfilment, and the Flink windows against the "
        "reference). 'pipeline demo' with no arguments runs 10,000 generated events."
    )


def _input(args: argparse.Namespace) -> tuple[list[Event], list[bytes]]:
    """Valid events, and the raw lines that are not (sent as they are, to come back as bad rows)."""
    if not args.input:
        return list(generate_events(args.events, args.seed)), []
    events: list[Event] = []
    malformed: list[bytes] = []
    with open_input(args.input) as stream:
        for line in stream:
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                events.append(decode_event(raw.strip()))
            except EventValidationError:
                malformed.append(raw)
    return events, malformed


def run(args: argparse.Namespace) -> int:
    events, malformed = _input(args)
    demo = DemoRun(
        args.state_dir,
        record_format=RecordFormat(args.format),
        fault_rate=args.fault_rate,
        rng=random.Random(args.seed),  # noqa: S311 - fault injection, not security
        keep=args.keep,
        endpoint_url=args.endpoint_url,
        windows=args.windows,
        stores=args.stores if args.stores is not None else not args.input,
        stock=args.stock,
        sql=not args.no_sql,
        note=_note,
    )
    progress = Progress("consume", unit="records")
    try:
        summary = demo.run(events, malformed, on_records=progress.advance)
    except DeliveryError as exc:
        progress.close()
        print(f"pipeline demo: the producer gave up: {exc}", file=sys.stderr)
        return 1
    progress.close()
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(summary.as_json(), option=orjson.OPT_NON_STR_KEYS) + b"\n")
    else:
        _print(summary)
    return 0 if summary.verified else 1


def _note(message: str) -> None:
    print(f"pipeline demo: {message}", file=sys.stderr)


def _print(s: DemoSummary) -> None:
    print(f"stack          {s.stack} on {s.endpoint} (format {s.record_format}, fault rate {s.fault_rate})")
    to_stores = f"; {s.order_events_in} order events of the input went to the stores instead" if s.shop else ""
    print(f"events sent    {s.events_sent} valid + {s.malformed_sent} malformed lines by the producer{to_stores}")
    _print_stores(s)
    p = s.producer
    print(
        f"producer       {p['records']} records, {p['bytes']:,} bytes, {p['put_calls']} PutRecords calls, "
        f"{p['retries']} entries resent, {p['throttled_calls']} throttled calls"
    )
    print(
        f"consumer       {s.records_consumed} records in {s.invocations} invocations "
        f"({s.function_errors} function errors, {s.partial_failures} partial failures, {s.bisections} bisections)"
    )
    print(f"DynamoDB       {s.dynamodb_requests} requests ({s.dynamodb_requests_per_event:.3f} per event)")
    reasons = Counter(r.split(":")[0] for r in s.bad_row_reasons)
    print(f"bad rows       {len(s.bad_row_reasons)} {dict(reasons) if reasons else ''}")
    print(f"fulfilment     {s.fulfilment_messages} messages; on-failure queue {s.discarded_batches} batches")
    print(
        f"archive        {s.archive_events} events in {s.archive_objects} gzip objects under events/, "
        f"{s.archive_error_objects} objects under errors/"
    )
    _print_windows(s)
    print(f"faults         {s.faults}")
    print(f"elapsed        {s.elapsed_s:.1f} s ({s.events_sent / max(s.elapsed_s, 1e-9):,.0f} events/s end to end)")
    if s.verified:
        windows = ""
        if s.windows is not None and s.windows.verified:
            windows = "; Flink's windows equal the reference's"
        print(
            f"verification   PASSED: {len(s.tables)} tables equal the counts computed from the published events and "
            f"the orders the stores committed (each counted once); the archive holds exactly those events{windows}"
        )
    else:
        print("verification   FAILED:")
        for line in s.problems:
            print(f"  {line}")


def _print_stores(s: DemoSummary) -> None:
    shop, orders = s.shop, s.orders
    if shop is None:
        return
    print(f"stores         single table; SQL store: {shop.sql}")
    print(f"seeded         {shop.users:,} users, {shop.products:,} products ({shop.stock} units each per store)")
    placed, committed = sum(shop.placed.values()), sum(shop.committed.values())
    by_store = ", ".join(f"{store} {n:,}" for store, n in sorted(shop.placed.items()))
    rejected = ", ".join(f"{n:,} for {reason}" for reason, n in sorted(shop.rejected.items())) or "none"
    print(f"orders         {placed:,} placed ({by_store}); {committed:,} committed; rejected: {rejected}")
    changes = sum(shop.status_changes.values())
    skipped = sum(shop.skipped.values())
    print(f"               {changes:,} status changes committed; {skipped:,} order events skipped {dict(shop.skipped)}")
    print(
        f"CDC            table stream -> bridge: {shop.bridged:,} order events ({shop.bridge_invocations:,} "
        f"invocations, {shop.bridge_redeliveries} re-deliveries); outbox -> relay: {shop.relayed:,} events"
    )
    if orders is not None:
        print(
            f"counted        {orders.counted_daily:,} orders in daily_orders, {orders.counted_hourly:,} in "
            f"hourly_orders, revenue {orders.revenue_daily}; the stores committed {orders.orders:,} orders, "
            f"revenue {orders.revenue}"
        )


def _print_windows(s: DemoSummary) -> None:
    w = s.windows
    if w is None:
        print("windows        skipped (--windows off)")
        return
    items = ", ".join(f"{metric} {count:,}" for metric, count in sorted(w.items.items()))
    print(f"windows        {w.events:,} archived events, {w.late_events:,} late: {items}")
    if w.engine == "flink":
        state = "equal the reference" if w.verified else "DIFFER from the reference"
        seconds = w.seconds
        print(
            f"               Flink wrote {w.written or 0:,} items to window_metrics, which {state} "
            f"(Flink start-up {seconds.get('flink_startup', 0):.1f} s, job {seconds.get('flink_job', 0):.1f} s)"
        )
    else:
        print(f"               the Python reference alone: Flink did not run ({w.why_not_flink})")
