"""``pipeline analytics run | package``: the Flink SQL windows over the archive, and the Managed Flink zip.

``run`` replays the S3 archive (or a local copy of it) in event-time order through the real Flink job
(PyFlink, a local mini-cluster) and writes the results to the ``window_metrics`` table: with the
DynamoDB connector in AWS, with ``BatchWriteItem`` here (its jar cannot be fetched locally). It needs
Python 3.12 with the ``analytics`` dependency group and Java 17; without them it says so in one line
and exits 2, and the rest of the project works as before.

``package`` builds the zip Amazon Managed Service for Apache Flink runs (``analytics/deploy/README.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.exceptions import PipelineError
from pipeline.settings import Settings, aws_client
from tools.cli.archive_cmd import parse_time

__all__ = ["configure", "run"]

_RUN_EPILOG = (
    "The archive is --bucket or ARCHIVE_BUCKET (or --from-dir, a copy made with 'aws s3 sync'); the table "
    'is --table or WINDOW_METRICS_TABLE (eval "$(pipeline up)" sets both); the endpoint --endpoint-url or '
    "PIPELINE_ENDPOINT_URL. --since is inclusive, --until exclusive, on event time: a window cut by either "
    "holds only the events inside. Exit status: 0 done, 1 the job or AWS failed, 2 usage, or no Java/PyFlink."
)


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run_parser = actions.add_parser(
        "run", help="run the Flink job over the archive, write window_metrics", epilog=_RUN_EPILOG
    )
    run_parser.add_argument("--since", type=parse_time, help="first event time to include")
    run_parser.add_argument("--until", type=parse_time, help="event time to stop before")
    source = run_parser.add_mutually_exclusive_group()
    source.add_argument("--bucket", help="the archive bucket (default: ARCHIVE_BUCKET)")
    source.add_argument("--from-dir", type=Path, help="a local copy of the archive bucket instead")
    target = run_parser.add_mutually_exclusive_group()
    target.add_argument("--table", help="the window_metrics table (default: WINDOW_METRICS_TABLE)")
    target.add_argument("--no-store", action="store_true", help="compute and report only; write no table")
    run_parser.add_argument("--endpoint-url", help="AWS endpoint (the local emulator)")
    run_parser.add_argument(
        "--allowed-lateness", type=float, default=30.0, help="seconds an event may trail the newest (default 30)"
    )
    run_parser.add_argument("--json", action="store_true", help="print one JSON summary instead of the table")
    package_parser = actions.add_parser("package", help="build the zip Managed Service for Apache Flink runs")
    package_parser.add_argument("--output", type=Path, default=Path("dist/analytics-flink.zip"), help="zip to write")
    package_parser.add_argument("--jar", type=Path, help="the connectors' shaded jar (analytics/deploy/pom.xml)")
    package_parser.add_argument("--json", action="store_true", help="print one JSON summary")
    parser.epilog = "Run 'pipeline analytics run --help' or 'pipeline analytics package --help'."


def _say(message: str) -> None:
    print(f"pipeline analytics: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.action == "package":
        return _package(args)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from analytics.flink import unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        _say(reason)
        return 2
    if args.since and args.until and args.since >= args.until:
        _say("--since must be before --until")
        return 2
    lateness = timedelta(seconds=args.allowed_lateness)
    if args.allowed_lateness < 0 or lateness % timedelta(milliseconds=1):
        _say("--allowed-lateness must be a non-negative number of seconds, to the millisecond")
        return 2
    bucket = args.bucket or os.environ.get("ARCHIVE_BUCKET")
    if args.from_dir is None and not bucket:
        _say("no archive: pass --bucket (or set ARCHIVE_BUCKET) or --from-dir")
        return 2
    table = None if args.no_store else (args.table or os.environ.get("WINDOW_METRICS_TABLE"))
    if not args.no_store and not table:
        _say("no table: pass --table (or set WINDOW_METRICS_TABLE) or --no-store")
        return 2
    settings = Settings.from_env()
    if args.endpoint_url:
        settings = settings.with_(endpoint_url=args.endpoint_url)
    try:
        summary = _analyse(args, settings, bucket or "local", table, lateness)
    except (PipelineError, ClientError, BotoCoreError) as exc:
        _say(str(exc))
        return 1
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
    else:
        _print_table(summary)
    return 0


def _analyse(args: argparse.Namespace, settings: Settings, bucket: str, table: str | None, lateness: timedelta) -> Any:
    from analytics.archive_copy import LocalArchive
    from analytics.flink import shared_cluster
    from analytics.local import analyse_archive, replay_events
    from analytics.store import write_items

    s3 = LocalArchive(args.from_dir) if args.from_dir is not None else aws_client("s3", settings)
    store = None
    if table is not None:
        dynamodb = aws_client("dynamodb", settings)

        def store(items: Any) -> int:
            return write_items(dynamodb, table, items)

    events = replay_events(s3, bucket, since=args.since, until=args.until)
    _say("starting a local Flink cluster")
    started = time.perf_counter()
    cluster = shared_cluster()
    cluster_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="pipeline-analytics-") as workdir:
        analysis = analyse_archive(
            events, Path(workdir), allowed_lateness=lateness, store=store, cluster=cluster.options, note=_say
        )
    return {
        "source": str(args.from_dir) if args.from_dir is not None else f"s3://{bucket}",
        "since": args.since.isoformat() if args.since else None,
        "until": args.until.isoformat() if args.until else None,
        "allowed_lateness_s": args.allowed_lateness,
        "events": analysis.staged.events,
        "rows": analysis.staged.rows,
        "rejected": [{"event_id": r.event_id, "reason": r.reason} for r in analysis.staged.rejected],
        "items": {metric: len(items) for metric, items in analysis.job.items.items()},
        "late_events": analysis.job.late_events,
        "table": table,
        "written": analysis.written,
        "timings_s": {
            "flink_cluster": round(cluster_s, 3),
            **{name: round(seconds, 3) for name, seconds in analysis.timings.items()},
        },
    }


def _print_table(summary: dict[str, Any]) -> None:
    lines = [
        f"source          {summary['source']}",
        f"events          {summary['events']:,} read, {summary['rows']:,} analysed, "
        f"{len(summary['rejected'])} rejected",
        f"late events     {summary['late_events']:,} (allowed lateness {summary['allowed_lateness_s']} s)",
    ]
    lines += [f"  {metric:<20} {count:>9,} items" for metric, count in summary["items"].items()]
    written = summary["written"]
    lines.append(
        f"written         {written:,} items to {summary['table']}" if written is not None else "written         -"
    )
    timings = summary["timings_s"]
    lines.append(
        f"seconds         Flink cluster {timings['flink_cluster']}, replay+stage {timings['replay_and_stage']}, "
        f"Flink start-up {timings['flink_startup']}, job {timings['flink_job']}, write {timings['write']}"
    )
    lines += [f"rejected        {r['event_id']}: {r['reason']}" for r in summary["rejected"][:20]]
    print("\n".join(lines))


def _package(args: argparse.Namespace) -> int:
    from analytics.package import build_package

    try:
        package = build_package(args.output, jar=args.jar)
    except PipelineError as exc:
        _say(str(exc))
        return 1
    for missing in package.missing:
        _say(f"not deployable yet: {missing}")
    if args.json:
        doc = {
            "path": str(package.path),
            "sha256": package.sha256,
            "size": package.size,
            "entries": len(package.entries),
            "dependencies": package.dependencies,
            "deployable": package.deployable,
            "missing": list(package.missing),
        }
        sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
    else:
        print(f"{package.path}  {package.size:,} bytes  sha256 {package.sha256}")
    return 0
