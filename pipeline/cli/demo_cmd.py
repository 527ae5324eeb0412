"""``pipeline demo``: the main job on the embedded stack, with a summary and a verification.

Today it runs the producer half: start (or reuse) the emulator, publish the reference workload through
the producer in the chosen format, read the stream back through the codec layer and verify that
exactly the events sent are there, each once. The consumer, archive and analytics join it as they land.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from pipeline.cli.io import Progress, open_input, read_events
from pipeline.codecs import DecodedEvent, RecordFormat, decode_record
from pipeline.events import Event
from pipeline.faults import FaultInjector
from pipeline.generate import generate_events
from pipeline.local import start_or_reuse
from pipeline.local.streams import create_stream, delete_stream, read_all
from pipeline.settings import Settings, aws_client
from producers import Producer

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--events", type=int, default=10_000, help="generated events to send (default 10000)")
    source.add_argument("--input", help="send the events of this NDJSON file instead of generated ones")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument(
        "--format", choices=[f.value for f in RecordFormat], default="json", help="record format (default json)"
    )
    parser.add_argument("--shards", type=int, default=2, help="shards of the demo stream (default 2)")
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="fraction of PutRecords entries to fail and of calls to throttle (default 0)",
    )
    parser.add_argument("--state-dir", default=".pipeline", help="where the emulator's record and log live")
    parser.add_argument("--keep", action="store_true", help="leave a newly started emulator running")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def _events(args: argparse.Namespace, errors: list[str]) -> list[Event]:
    if args.input:
        with open_input(args.input) as stream:
            return list(read_events(stream, errors))
    return list(generate_events(args.events, args.seed))


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    input_errors: list[str] = []
    events = _events(args, input_errors)
    emulator = start_or_reuse(Path(args.state_dir))
    settings = Settings(endpoint_url=emulator.endpoint_url)
    kinesis = aws_client("kinesis", settings.with_(max_attempts=1))  # the producer owns retries
    stream = f"demo-{int(time.time() * 1000)}"
    summary: dict[str, Any] = {"emulator": emulator.endpoint_url, "stream": stream, "format": args.format}
    try:
        create_stream(kinesis, stream, args.shards)
        faults = FaultInjector(seed=args.seed)
        if args.fault_rate > 0:
            faults.fail_put_records(kinesis, rate=args.fault_rate)
            faults.throttle(kinesis, rate=args.fault_rate / 2)
        progress = Progress("produce", len(events))
        with Producer(stream, kinesis, record_format=RecordFormat(args.format)) as producer:
            for event in events:
                producer.put(event)
                progress.advance()
        progress.close()
        faults.detach()
        summary["producer"] = producer.stats.as_dict()
        seen: Counter[str] = Counter()
        bad = []
        records = 0
        for shard_id, record in read_all(kinesis, stream):
            records += 1
            for result in decode_record(record["Data"], shard_id, record["SequenceNumber"]):
                if isinstance(result, DecodedEvent):
                    seen[result.event.event_id] += 1
                else:
                    bad.append(result.reason)
        sent = Counter(e.event_id for e in events)
        missing = sum((sent - seen).values())
        duplicated = sum((seen - sent).values())
        summary.update(
            events_sent=len(events),
            records_in_stream=records,
            events_read_back=sum(seen.values()),
            missing=missing,
            duplicated=duplicated,
            bad_records=len(bad),
            invalid_input_lines=len(input_errors),
            faults_injected=asdict(faults.counts),
            verified=missing == 0 and duplicated == 0 and not bad,
        )
        delete_stream(kinesis, stream)
    finally:
        if not emulator.reused and not args.keep:
            emulator.stop()
    summary["elapsed_s"] = round(time.monotonic() - started, 2)
    for error in input_errors:
        print(f"pipeline demo: {error}", file=sys.stderr)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
    else:
        _print_summary(summary)
    return 0 if summary["verified"] else 1


def _print_summary(summary: dict[str, Any]) -> None:
    p = summary["producer"]
    print(f"emulator       {summary['emulator']}  stream {summary['stream']}  format {summary['format']}")
    print(f"events sent    {summary['events_sent']}")
    print(
        f"producer       {p['records']} records, {p['bytes']} bytes, {p['put_calls']} PutRecords calls, "
        f"{p['retries']} entries resent, {p['throttled_calls']} throttled calls"
    )
    print(f"faults         {summary['faults_injected']}")
    print(
        f"read back      {summary['events_read_back']} events from {summary['records_in_stream']} records; "
        f"missing {summary['missing']}, duplicated {summary['duplicated']}, bad records {summary['bad_records']}"
    )
    print(f"elapsed        {summary['elapsed_s']} s")
    print("verification   " + ("PASSED: every event in the stream exactly once" if summary["verified"] else "FAILED"))
