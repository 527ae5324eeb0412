"""``pipeline up | down | status``: the local stack (emulator, ``template.yaml``, live runtime, PostgreSQL).

``up`` starts (or reuses) the emulator recorded in the state dir, deploys the template into it,
starts (or reuses) the SQL store's PostgreSQL (:mod:`tools.local.postgres_service`, migrated) and
starts the live runtime in the background (:mod:`tools.local.live`: the consumer's event source
mapping and the archive's delivery stream, run continuously); ``down`` stops the runtime, deletes
the stack, stops PostgreSQL and that emulator; ``status`` shows what is in it and what the runtime is
doing.
Everything lives in one state dir per user (:mod:`tools.local.state`), so any directory will do.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.exceptions import PipelineError
from pipeline.settings import Settings, aws_client
from tools.local.state import STATE_DIR_VARIABLE, default_state_dir, stack_file

if TYPE_CHECKING:
    from tools.local.stack import StackInfo

__all__ = ["configure", "run", "stack_status"]

_MAX_PAGES_PER_SHARD = 20  # GetRecords pages of 10,000: status stays cheap on a big stream

_EPILOGS = {
    "up": (
        "Starts (or reuses) the emulator, deploys template.yaml into it, starts (or reuses) a PostgreSQL server "
        "for the SQL store (127.0.0.1, a free port, migrated; where PostgreSQL cannot run, up says why and goes "
        "on without it), and starts the live runtime in the "
        "background: it polls every shard continuously and runs the deployed consumer with the template's "
        "event-source settings (batch size, batching window, retries, bisect, on-failure queue), and the "
        "archive's delivery stream (buffered by size and time, written on its interval). Anything written to "
        "the stream then reaches the tables within seconds and the archive within the buffer interval. "
        "Prints 'export NAME=value' lines on stdout (the endpoint, the state dir, every stack output as "
        "UPPER_SNAKE, the consumer's environment, STORES_POSTGRES_CONNINFO and libpq's PG* variables), so  "
        'eval "$(pipeline up)"  sets them in your shell; the '
        "same and more is written to <state-dir>/stack-<stage>.json. Deploying again is an update (the "
        "runtime restarts) or a no-op. Everything keeps running until 'pipeline down'."
    ),
    "down": (
        "Stops the live runtime (SIGTERM: it writes the archive's buffers first), deletes the stack (emptying "
        "its buckets) if the emulator recorded in the state dir is running, stops the state dir's PostgreSQL "
        "(its data is removed), then stops that emulator and "
        "every runtime of the state dir (its state is in memory: everything in it is gone). Works from any "
        "directory; nothing running is fine."
    ),
    "status": (
        "Shows the emulator (pid, endpoint, log), PostgreSQL (port, pid, applied migrations), the stack status, "
        "the live runtime (per shard its lag, "
        "invocations and errors; bad rows, archive lag; its log), per shard the records retained, item "
        "counts per table, queue depths and the bad-row objects. Exit status 1 when no emulator or no stack "
        "is there."
    ),
}


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--stage", default="local", help="stack event-pipeline-STAGE (default local)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help=f"where the emulator's record, logs, the stack file and the runtime's status live (default "
        f"${STATE_DIR_VARIABLE}, else $XDG_STATE_HOME/event-pipeline, else ~/.local/state/event-pipeline)",
    )
    if name == "up":
        parser.add_argument(
            "--archive-interval",
            type=float,
            metavar="SECONDS",
            help="write the archive's buffers this often instead of the template's ArchiveBufferIntervalSeconds "
            "(a local shortcut; the template's minimum is 60)",
        )
        parser.add_argument("--no-runtime", action="store_true", help="deploy only; start no live runtime")
        parser.add_argument("--template", type=Path, help="the SAM template (default: the repository's template.yaml)")
        parser.add_argument(
            "--parameter",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a template parameter, e.g. StreamMode=PROVISIONED (repeatable; the rest keep their defaults)",
        )
    if name == "down":
        parser.add_argument("--keep-emulator", action="store_true", help="delete the stack, leave the emulator up")
    if name in {"up", "status"}:
        parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.epilog = _EPILOGS[name]


def run(args: argparse.Namespace) -> int:
    command = {"up": _up, "down": _down, "status": _status}[args.command]
    try:
        return command(args)
    except (PipelineError, ClientError, BotoCoreError) as exc:
        print(f"pipeline {args.command}: {exc}", file=sys.stderr)
        return 1


def _up(args: argparse.Namespace) -> int:
    from tools.local.emulator import start_or_reuse
    from tools.local.stack import StackError, deploy

    parameters = dict(_key_value(item) for item in args.parameter)
    state_dir = args.state_dir.absolute()
    started = time.monotonic()
    emulator = start_or_reuse(state_dir)
    how = "reused" if emulator.reused else f"started in {time.monotonic() - started:.1f} s"
    _note("up", f"emulator {emulator.endpoint_url} ({how}, pid {emulator.pid}, log {emulator.log_path})")
    settings = Settings.from_env().with_(endpoint_url=emulator.endpoint_url)
    deploying = time.monotonic()
    try:
        info = deploy(settings, stage=args.stage, template=args.template, parameters=parameters)
    except StackError as exc:
        print(f"pipeline up: {exc}", file=sys.stderr)
        _note("up", f"the emulator stays up (pid {emulator.pid}): fix and run 'pipeline up' again, or 'pipeline down'")
        return 1
    elapsed = time.monotonic() - deploying
    postgres = _start_postgres(state_dir, args.stage)
    exports = {"PIPELINE_ENDPOINT_URL": emulator.endpoint_url, STATE_DIR_VARIABLE: str(state_dir)}
    exports.update({_upper_snake(key): value for key, value in info.outputs.items()})
    exports.update(info.function_environment)
    exports.update(postgres.exports() if postgres else {})
    document = {
        "endpoint_url": emulator.endpoint_url,
        "region": settings.region,
        "stage": args.stage,
        "deployed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "deploy_s": round(elapsed, 3),
        **info.as_dict(),
        "exports": exports,
    }
    path = stack_file(state_dir, args.stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    removed = f"; removed the emulator's event source mapping {', '.join(info.removed_mappings)}"
    removed = removed if info.removed_mappings else ""
    _note("up", f"stack {info.stack_name} {info.change} in {elapsed:.2f} s ({info.status}){removed}")
    if not args.no_runtime:
        document["runtime"] = _start_runtime(state_dir, args.stage, restart=info.change != "unchanged", args=args)
    _note("up", f"wrote {path}; next: 'pipeline status', 'pipeline down'")
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(document) + b"\n")
    else:
        sys.stdout.write("".join(f"export {name}={shlex.quote(value)}\n" for name, value in exports.items()))
    return 0


def _start_postgres(state_dir: Path, stage: str) -> Any:
    from tools.local import postgres_service

    started = time.monotonic()
    try:
        record, reused = postgres_service.start_or_reuse(state_dir, stage)
    except PipelineError as exc:
        _note("up", f"PostgreSQL not started ({exc}); the SQL store is not available locally")
        return None
    how = "reused" if reused else f"started and migrated in {time.monotonic() - started:.1f} s"
    _note("up", f"PostgreSQL {record.version} on 127.0.0.1:{record.port} ({how}, pid {record.pid})")
    return record


def _start_runtime(state_dir: Path, stage: str, *, restart: bool, args: argparse.Namespace) -> dict[str, Any]:
    from tools.local.live_process import find_runtime, start_runtime, stop_runtime

    running = find_runtime(state_dir, stage)
    if running is not None and (restart or args.archive_interval is not None):
        stop_runtime(state_dir, stage)
        running = None
    how = "reused"
    if running is None:
        running = start_runtime(state_dir, stage, archive_interval_s=args.archive_interval)
        how = "started"
    _note("up", f"live runtime {how} (pid {running.pid}, log {running.log}): the stream is consumed and archived")
    return {"pid": running.pid, "log": running.log, "status": running.status}


def _down(args: argparse.Namespace) -> int:
    from tools.local import postgres_service
    from tools.local.emulator import find_recorded
    from tools.local.live_process import stop_all_runtimes, stop_runtime
    from tools.local.stack import StackError, destroy, stack_name

    state_dir = args.state_dir.absolute()
    stopped = stop_runtime(state_dir, args.stage)
    if stopped is not None:
        _note("down", f"live runtime stopped (pid {stopped.pid}, log kept: {stopped.log})")
    if not args.keep_emulator and (postgres := postgres_service.stop(state_dir)) is not None:
        _note("down", f"PostgreSQL stopped (pid {postgres.pid}); its data directory is removed")
    emulator = find_recorded(state_dir)
    stack_file(state_dir, args.stage).unlink(missing_ok=True)
    if emulator is None:
        _note("down", f"no emulator running in {state_dir}: nothing to delete (its state was in memory)")
        return 0
    settings = Settings.from_env().with_(endpoint_url=emulator.endpoint_url)
    try:
        # empty_buckets: this is the emulator's throwaway data (the endpoint is always the emulator here)
        deleted = destroy(settings, args.stage, empty_buckets=True)
        _note("down", f"stack {stack_name(args.stage)} {'deleted' if deleted else 'was not there'}")
    except StackError as exc:
        if args.keep_emulator:
            raise
        _note("down", f"{exc}\n(stopping the emulator discards the stack anyway)")
    if args.keep_emulator:
        _note("down", f"emulator left running at {emulator.endpoint_url} (pid {emulator.pid})")
        return 0
    for other in stop_all_runtimes(state_dir):
        _note("down", f"live runtime of stage {other.stage} stopped (pid {other.pid})")
    emulator.stop()
    _note("down", f"emulator stopped (pid {emulator.pid}, log kept: {emulator.log_path})")
    return 0


def _status(args: argparse.Namespace) -> int:
    from tools.cli.live_status import runtime_status
    from tools.local.emulator import STATE_FILE, EmulatorRecord, find_recorded
    from tools.local.stack import describe, stack_name

    state_dir = args.state_dir.absolute()
    emulator = find_recorded(state_dir)
    if emulator is None:
        print(f"pipeline status: no emulator running in {state_dir}: run 'pipeline up'", file=sys.stderr)
        return 1
    record = EmulatorRecord.read(state_dir.absolute() / STATE_FILE)
    report: dict[str, Any] = {
        "emulator": {
            "endpoint_url": emulator.endpoint_url,
            "pid": emulator.pid,
            "log": str(emulator.log_path),
            "version": record.version if record else "",
            "started_at": record.started_at if record else "",
        },
        "stack": {"name": stack_name(args.stage), "status": "DOES_NOT_EXIST"},
    }
    from tools.local import postgres_service

    report["postgres"] = postgres_service.describe(state_dir)
    settings = Settings.from_env().with_(endpoint_url=emulator.endpoint_url)
    info = describe(settings, args.stage)
    if info is not None:
        report["stack"]["status"] = info.status
        report["runtime"] = runtime_status(state_dir, args.stage)
        report.update(stack_status(settings, info))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report) + b"\n")
    else:
        _print_status(report)
    if info is None:
        print(f"pipeline status: stack {stack_name(args.stage)} does not exist: run 'pipeline up'", file=sys.stderr)
        return 1
    return 0


def stack_status(settings: Settings, info: StackInfo) -> dict[str, Any]:
    """Shards with their retained records, item counts, queue depths and bad-row objects.

    A probe that fails (a resource deleted behind the stack's back) reports ``{"error": ...}`` in its
    place instead of failing the whole status.
    """
    from tools.local.stack import StackError

    status: dict[str, Any] = {}
    stream = info.outputs.get("StreamName")
    if stream:
        status["stream"] = {"name": stream, "shards": _probe(_shards, aws_client("kinesis", settings), stream)}
    try:
        resources = info.resources()
    except StackError:
        return status  # a stack that failed or predates the outputs: nothing more to count
    dynamodb = aws_client("dynamodb", settings)
    status["tables"] = {name: _probe(_count_items, dynamodb, name) for name in resources.tables.values()}
    sqs = aws_client("sqs", settings)
    queues = [*resources.queues.values(), info.outputs.get("ConsumerFailureQueueUrl", "")]
    status["queues"] = {url.rsplit("/", 1)[-1]: _probe(_depth, sqs, url) for url in queues if url}
    s3 = aws_client("s3", settings)
    bucket, prefix = resources.bad_rows_bucket, resources.bad_rows_prefix
    status["bad_rows"] = {"bucket": bucket, "prefix": prefix, "objects": _probe(_objects, s3, bucket, prefix)}
    return status


def _probe(function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except (ClientError, BotoCoreError) as exc:
        return {"error": str(exc)}


def _shards(kinesis: Any, stream: str) -> list[dict[str, Any]]:
    shards = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        shard_id = shard["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        records, capped = 0, True
        for _ in range(_MAX_PAGES_PER_SHARD):
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records += len(page["Records"])
            iterator = page.get("NextShardIterator")
            if not iterator or (not page["Records"] and page.get("MillisBehindLatest", 0) == 0):
                capped = False
                break
        shards.append({"shard_id": shard_id, "records": records, "capped": capped})
    return shards


def _count_items(dynamodb: Any, table: str) -> int:
    count = 0
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, Select="COUNT"):
        count += page["Count"]
    return count


def _depth(sqs: Any, url: str) -> dict[str, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return {"visible": int(attributes.get(names[0], 0)), "in_flight": int(attributes.get(names[1], 0))}


def _objects(s3: Any, bucket: str, prefix: str) -> int:
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        count += int(page.get("KeyCount", 0))
    return count


def _print_status(report: dict[str, Any]) -> None:
    from tools.local.postgres_service import status_lines

    emulator, stack = report["emulator"], report["stack"]
    lines = [
        f"emulator  {emulator['endpoint_url']}  pid {emulator['pid']}  ministack {emulator['version']}"
        f"  since {emulator['started_at']}",
        f"          log {emulator['log']}",
        f"stack     {stack['name']}  {stack['status']}",
    ]
    lines[2:2] = status_lines(report.get("postgres", {}))
    if "runtime" in report:
        from tools.cli.live_status import runtime_lines

        lines.extend(runtime_lines(report["runtime"]))
    stream = report.get("stream")
    if stream:
        lines.append(f"stream    {stream['name']}")
        shards = stream["shards"]
        for shard in shards if isinstance(shards, list) else [shards]:
            if "error" in shard:
                lines.append(f"  error: {shard['error']}")
                continue
            more = "+ (stopped counting)" if shard["capped"] else " "
            lines.append(f"  {shard['shard_id']}  {shard['records']}{more}records from TRIM_HORIZON")
    if "tables" in report:
        lines.append("tables    (items)")
        lines.extend(f"  {name}  {_show(count)}" for name, count in report["tables"].items())
    if "queues" in report:
        lines.append("queues    (visible / in flight)")
        for name, depth in report["queues"].items():
            shown = _show(depth) if "error" in depth else f"{depth['visible']} / {depth['in_flight']}"
            lines.append(f"  {name}  {shown}")
    if "bad_rows" in report:
        rows = report["bad_rows"]
        lines.append(f"bad rows  s3://{rows['bucket']}/{rows['prefix']}  {_show(rows['objects'])} objects")
    print("\n".join(lines))


def _show(value: Any) -> str:
    return f"error: {value['error']}" if isinstance(value, dict) and "error" in value else str(value)


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        from tools.cli.io import fail

        fail(f"--parameter wants KEY=VALUE, got {item!r}")
    return key, value


def _upper_snake(camel: str) -> str:
    out = "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(camel))
    return out.upper()


def _note(command: str, text: str) -> None:
    print(f"pipeline {command}: {text}", file=sys.stderr)
