"""``pipeline load synthetic | replay``: drive the stream at a rate, or replay the archive, and measure.

Both send through the project's :class:`~producers.Producer` to the live stack ``pipeline up``
started (or ``--endpoint-url``/``--stream``), show progress on stderr, and print a summary (``--json``:
one object): events/s achieved against the target or what limited it, the producer's PutRecords
calls, throttles and resends, and the end-to-end lag percentiles (:mod:`load.lag`).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline.codecs import RecordFormat
from pipeline.events import Event, EventType
from pipeline.settings import Settings, aws_client
from producers import Producer
from tools.cli.args import endpoint_url, non_negative_int, positive_number
from tools.local.state import STATE_DIR_VARIABLE, default_state_dir

__all__ = ["configure", "run"]

_EPILOG = (
    "Target: the stack 'pipeline up' deployed (its state dir and stage), or --endpoint-url and --stream. "
    "Lag is measured from put() to the effect in the user_activities table, on a sample of user_activity "
    "events (--lag-samples a second); it needs the stack's tables, and new event ids (a replay that keeps "
    "ids changes no table: the consumer drops the events as duplicates within its dedup window). Exit "
    "status 1 if any event was not delivered."
)


def _aware(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time such as 2026-11-24T06:00:00Z") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset: add Z or +HH:MM")
    return value


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    parser.epilog = _EPILOG
    modes = parser.add_subparsers(dest="mode", metavar="MODE", required=True)
    synthetic = modes.add_parser(
        "synthetic",
        help="the reference workload at --rate events/s for --seconds",
        description="Send rate x seconds events of the reference workload (tools.generate), dated over the run, "
        "at the target rate; report the rate reached (or what limited it) and the end-to-end lag.",
        epilog=_EPILOG,
    )
    synthetic.add_argument("--rate", type=positive_number, required=True, help="target events per second")
    synthetic.add_argument("--seconds", type=positive_number, required=True, help="how long the schedule lasts")
    synthetic.add_argument("--seed", type=int, help="workload seed (default: from the clock; reported)")
    replay = modes.add_parser(
        "replay",
        help="republish archived events with their original pacing scaled by --speed, or at --rate",
        description="Read the archive (pipeline.archive.reader), then republish its events in event-time order "
        "with their original inter-arrival times divided by --speed, or at --rate events/s. Ids are kept "
        "(the consumer's dedup drops them) unless --new-ids (the replay is counted; orders keep their "
        "order_id, so each order still counts once). The selected events are held in memory.",
        epilog=_EPILOG,
    )
    replay.add_argument("--type", choices=[t.value for t in EventType], help="only this event type")
    replay.add_argument("--since", type=_aware, help="events at or after this time (ISO 8601 with offset)")
    replay.add_argument("--until", type=_aware, help="events before this time (ISO 8601 with offset)")
    pace = replay.add_mutually_exclusive_group(required=True)
    pace.add_argument("--speed", type=positive_number, help="original inter-arrival times divided by this")
    pace.add_argument("--rate", type=positive_number, help="events per second, evenly spaced")
    replay.add_argument("--new-ids", action="store_true", help="give every event a new event_id")
    replay.add_argument("--bucket", help="archive bucket (default: the stack's ArchiveBucket)")
    for sub in (synthetic, replay):
        _common(sub)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help=f"the live stack's state dir (default ${STATE_DIR_VARIABLE}, else the per-user one)",
    )
    parser.add_argument("--stage", default="local", help="the live stack's stage (default local)")
    parser.add_argument("--endpoint-url", type=endpoint_url, help="AWS endpoint (default: the live stack's)")
    parser.add_argument("--stream", help="Kinesis stream (default: the live stack's)")
    parser.add_argument(
        "--format", choices=[f.value for f in RecordFormat], default="gzip-batch", help="record format (gzip-batch)"
    )
    parser.add_argument(
        "--lag-samples", type=non_negative_int, default=20, help="lag samples a second (default 20; 0: none)"
    )
    parser.add_argument("--lag-timeout", type=positive_number, default=60.0, help="give up on a sample after (60 s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from load.drive import drive
    from load.lag import LagProbe
    from load.target import resolve_target

    target = resolve_target(
        args.state_dir.absolute(),
        args.stage,
        endpoint_url=args.endpoint_url,
        stream=args.stream,
        bucket=getattr(args, "bucket", None),
    )
    kinesis = aws_client("kinesis", target.settings.with_(max_attempts=1))  # the producer owns retries
    kinesis.describe_stream_summary(StreamName=target.stream)  # one line (exit 2) if it is not there
    if args.mode == "synthetic":
        schedule, rate, about, counted = _synthetic(args)
    else:
        schedule, rate, about, counted = _replay(args, target.settings, target.archive_bucket)
    probe, lag_note = None, "not measured: --lag-samples 0"
    if args.lag_samples and not counted:
        lag_note = "not measured: the events keep ids the consumer has counted (use --new-ids)"
    elif args.lag_samples and target.activities_table is None:
        lag_note = "not measured: no stack file names the tables (run 'pipeline up', or drop --stream)"
    elif args.lag_samples:
        dynamodb = aws_client("dynamodb", target.settings)
        probe = LagProbe(
            dynamodb, target.activities_table or "", per_second=args.lag_samples, timeout_s=args.lag_timeout
        )
        lag_note = "put() to the user_activities row, sampled user_activity events"
    producer = Producer(target.stream, kinesis, record_format=RecordFormat(args.format))
    report = drive(schedule, producer, probe, target_rate=rate, label=f"load {args.mode}")
    summary: dict[str, Any] = {
        "mode": args.mode,
        "endpoint_url": target.settings.endpoint_url,
        "stream": target.stream,
        "format": args.format,
        args.mode: about,
        **report.as_dict(),
        "lag_measured": lag_note,
        "runtime": _runtime(args),
    }
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
    else:
        _print(summary)
    return 1 if report.undelivered else 0


_Plan = tuple[Iterator[tuple[float, Event]], float | None, dict[str, Any], bool]
"""A schedule, its target rate, what to report about it, and whether its events are new to the consumer."""


def _synthetic(args: argparse.Namespace) -> _Plan:
    from load.synthetic import SyntheticLoad

    seed = args.seed if args.seed is not None else time.time_ns() % 2**31
    load = SyntheticLoad.starting_now(args.rate, args.seconds, seed)
    return load.schedule(), args.rate, load.as_dict(), True


def _replay(args: argparse.Namespace, settings: Settings, bucket: str | None) -> _Plan:
    from load.replay import ReplayLoad, read_replay
    from tools.cli.io import fail

    if bucket is None:
        fail("load replay: no archive bucket: run 'pipeline up', or pass --bucket")
    event_type = EventType(args.type) if args.type else None
    events = read_replay(aws_client("s3", settings), bucket, event_type=event_type, since=args.since, until=args.until)
    if not events:
        fail(f"load replay: no archived events in s3://{bucket} for that selection")
    load = ReplayLoad(events, speed=args.speed, rate=args.rate, new_ids=args.new_ids, run_id=str(uuid.uuid4()))
    about = {
        "bucket": bucket,
        "events": len(events),
        "first_event": events[0].timestamp.isoformat(),
        "last_event": events[-1].timestamp.isoformat(),
        "speed": args.speed,
        "rate": args.rate,
        "span_s": round(load.span_s, 3),
        "new_ids": args.new_ids,
        "run_id": load.run_id,
    }
    return load.schedule(), load.target_rate, about, args.new_ids


def _runtime(args: argparse.Namespace) -> dict[str, Any] | None:
    """The live runtime's view when the run ended (how far the consumer got), if one runs for the stage."""
    from tools.cli.live_status import runtime_status

    status = runtime_status(args.state_dir.absolute(), args.stage)
    if status["state"] == "not running":
        return None
    ages = {shard: figures.get("iterator_age_ms") for shard, figures in status.get("shards", {}).items()}
    keys = ("state", "records", "events", "duplicates", "invocations", "function_errors", "bad_rows")
    return {**{key: status.get(key) for key in keys}, "iterator_age_ms": ages}


def _print(s: dict[str, Any]) -> None:
    target = s["target_events_per_s"]
    print(f"load {s['mode']}  {s['events']:,} events to {s['stream']} ({s['format']}) on {s['endpoint_url']}")
    reached = "reached" if s["reached_target"] else f"NOT reached: limited by {s['limited_by']}"
    shown = f"{target:,.0f}" if target else "?"
    print(f"rate      {s['achieved_events_per_s']:,.0f} events/s against {shown} ({reached})")
    print(f"time      {s['elapsed_s']:.1f} s (schedule {s['schedule_s']:.1f} s); {s['undelivered']} undelivered")
    p = s["producer"]
    print(
        f"producer  {p['put_calls']} PutRecords calls, {p['records']} records, {p['throttled_calls']} throttled, "
        f"{p['retries']} entries resent, {p['failed_entries']} failed entries"
    )
    lag = s["lag"]
    if lag:
        print(
            f"lag       p50 {lag['p50_ms']} ms  p95 {lag['p95_ms']} ms  p99 {lag['p99_ms']} ms  max {lag['max_ms']} ms "
            f"({lag['seen']} of {lag['samples']} samples seen, {lag['missed']} missed)"
        )
        if lag["consumer_saturated"]:
            print(
                f"          the consumer did not keep up: lag grew from {lag['first_quarter_p50_ms']} ms (first "
                f"quarter's p50) to {lag['last_quarter_p50_ms']} ms (last quarter's)"
            )
        if lag["missed"]:
            print(f"          {lag['missed']} samples not seen within --lag-timeout: the consumer fell behind")
    else:
        print(f"lag       {s['lag_measured']}")
    runtime = s["runtime"]
    if runtime:
        print(
            f"consumer  {runtime['events']:,} events counted so far, {runtime['invocations']} invocations, "
            f"iterator age (ms) {runtime['iterator_age_ms']}; {runtime['state']}"
        )
