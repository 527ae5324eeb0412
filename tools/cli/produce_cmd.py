"""``pipeline produce``: publish NDJSON events to a Kinesis stream through the :class:`Producer`."""

from __future__ import annotations

import argparse
import sys
import time

import orjson

from pipeline.codecs import RecordFormat
from pipeline.exceptions import DeliveryError
from pipeline.settings import Settings, aws_client
from producers import Producer
from tools.cli.args import endpoint_url
from tools.cli.io import Progress, open_input, read_events

__all__ = ["add_aws_arguments", "configure", "run", "settings_from"]


def add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    """``--endpoint-url`` and ``--region``, shared by every command that talks to AWS."""
    parser.add_argument(
        "--endpoint-url",
        type=endpoint_url,
        help="AWS endpoint, e.g. http://127.0.0.1:4566 for the embedded emulator "
        "(default: PIPELINE_ENDPOINT_URL, else real AWS)",
    )
    parser.add_argument("--region", help="AWS region (default: AWS_REGION, else us-east-1)")


def settings_from(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if args.endpoint_url:
        settings = settings.with_(endpoint_url=args.endpoint_url)
    if args.region:
        settings = settings.with_(region=args.region)
    return settings


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("input", nargs="?", default="-", help="NDJSON events file (default: standard input)")
    parser.add_argument("--stream", required=True, help="Kinesis stream name")
    add_aws_arguments(parser)
    parser.add_argument(
        "--format",
        choices=[f.value for f in RecordFormat],
        default=RecordFormat.JSON.value,
        help="record format (default json; gzip-batch is densest, see README)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.epilog = (
        "Invalid input lines are reported on stderr and skipped (exit 1). If the producer runs out of "
        "retries, the events not delivered are counted in the summary and the exit status is 1."
    )


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    kinesis = aws_client("kinesis", settings.with_(max_attempts=1))  # the producer owns retries
    # Fail fast, in one line, when the endpoint, the credentials or the stream are wrong (exit 2), before
    # the producer spends its retries on them.
    kinesis.describe_stream_summary(StreamName=args.stream)
    errors: list[str] = []
    undelivered = 0
    started = time.monotonic()
    progress = Progress("produce")
    producer = Producer(args.stream, kinesis, record_format=RecordFormat(args.format))

    def not_delivered(exc: DeliveryError) -> None:
        nonlocal undelivered
        undelivered += len(exc.undelivered)
        errors.append(str(exc))
        errors.extend(f"  {event_id}: {reason}" for event_id, reason in list(exc.reasons.items())[:10])

    try:
        with open_input(args.input) as stream:
            for event in read_events(stream, errors):
                try:
                    producer.put(event)
                except DeliveryError as exc:  # an earlier background flush: report it, keep going
                    not_delivered(exc)
                progress.advance()
    finally:
        try:
            producer.close()
        except DeliveryError as exc:
            not_delivered(exc)
        progress.close()
    elapsed = time.monotonic() - started
    summary = {
        **producer.stats.as_dict(),
        "undelivered": undelivered,
        "invalid_lines": sum(1 for e in errors if e.startswith("line ")),
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(producer.stats.events / elapsed, 1) if elapsed else 0.0,
        "stream": args.stream,
        "format": args.format,
    }
    for error in errors:
        print(f"pipeline produce: {error}", file=sys.stderr)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
    else:
        print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 1 if errors else 0
