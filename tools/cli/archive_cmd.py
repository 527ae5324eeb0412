"""``pipeline archive ls | cat``: the S3 archive by event type and event time.

``ls`` lists the event objects that may hold the selected events (key, size, date, type); ``cat``
streams the events themselves as canonical NDJSON, object after object, each in event-time order.
Both use :mod:`pipeline.archive.reader`, the library the analytics job and the load replays use.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.archive.reader import list_objects, read_archived
from pipeline.events import EventType
from pipeline.exceptions import PipelineError
from pipeline.settings import Settings, aws_client
from tools.cli.args import endpoint_url

__all__ = ["configure", "parse_time", "run"]

_EPILOG = (
    "Times are ISO 8601: a date (2026-11-24, midnight UTC) or a date and time; a time without an offset "
    "is UTC. --since is inclusive, --until exclusive, both on the event's own timestamp. The bucket is "
    '--bucket or ARCHIVE_BUCKET (eval "$(pipeline up)" sets it); the endpoint --endpoint-url or '
    "PIPELINE_ENDPOINT_URL (unset means real AWS)."
)


def parse_time(text: str) -> datetime:
    """``2026-11-24`` (midnight UTC), ``2026-11-24T06:00`` (UTC) or with an offset; aware UTC."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, summary in (
        ("ls", "list the archive objects that may hold the selected events"),
        ("cat", "stream the selected events as NDJSON, each object in event-time order"),
    ):
        sub = actions.add_parser(action, help=summary, description=summary, epilog=_EPILOG)
        sub.add_argument("--type", choices=[t.value for t in EventType], help="one event type (default: all)")
        sub.add_argument("--since", type=parse_time, help="first event time to include")
        sub.add_argument("--until", type=parse_time, help="event time to stop before")
        sub.add_argument("--bucket", help="the archive bucket (default: ARCHIVE_BUCKET)")
        sub.add_argument("--endpoint-url", type=endpoint_url, help="AWS endpoint (the local emulator)")
        if action == "ls":
            sub.add_argument("--json", action="store_true", help="one JSON object per object instead")
    parser.epilog = "Run 'pipeline archive ls --help' or 'pipeline archive cat --help'. " + _EPILOG


def run(args: argparse.Namespace) -> int:
    bucket = args.bucket or os.environ.get("ARCHIVE_BUCKET")
    if not bucket:
        print("pipeline archive: no bucket: pass --bucket or set ARCHIVE_BUCKET", file=sys.stderr)
        return 2
    if args.since and args.until and args.since >= args.until:
        print("pipeline archive: --since must be before --until", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    if args.endpoint_url:
        settings = settings.with_(endpoint_url=args.endpoint_url)
    s3 = aws_client("s3", settings)
    out = sys.stdout.buffer
    try:
        if args.action == "ls":
            for item in list_objects(s3, bucket, event_type=args.type, since=args.since, until=args.until):
                if args.json:
                    line = orjson.dumps(
                        {
                            "key": item.key,
                            "event_type": item.event_type.value,
                            "dt": item.dt.isoformat(),
                            "size": item.size,
                            "last_modified": item.last_modified,
                        }
                    )
                else:
                    line = f"{item.dt.isoformat()}  {item.event_type.value:<14} {item.size:>10}  {item.key}".encode()
                out.write(line + b"\n")
        else:
            for _, line in read_archived(s3, bucket, event_type=args.type, since=args.since, until=args.until):
                out.write(line + b"\n")  # as archived: the JSON its producer sent
    except (PipelineError, ClientError, BotoCoreError) as exc:
        out.flush()
        print(f"pipeline archive {args.action}: {exc}", file=sys.stderr)
        return 1
    out.flush()
    return 0
