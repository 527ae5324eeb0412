"""``pipeline``: the project's command line. Each command lives in its own module, imported on use.

Exit status: 0 success; 1 the command ran but found bad input or a failed check; 2 usage or
configuration errors (argparse's convention), and AWS that cannot be reached or refuses us (no
endpoint, no credentials, access denied, a missing stream). Every such error is one line on stderr
that says what to do, never a traceback (``-v`` adds debug logs).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Final, NoReturn

__all__ = ["main"]

# command -> (module, one-line help). Modules expose ``configure(parser)`` and ``run(args) -> int``.
COMMANDS: Final = {
    "generate": ("tools.cli.generate_cmd", "write the reference synthetic workload as NDJSON events"),
    "encode": ("tools.cli.codec_cmd", "pack NDJSON events into Kinesis records (one JSON line per record)"),
    "decode": ("tools.cli.codec_cmd", "decode records, a Lambda Kinesis event or a Firehose event into events"),
    "produce": ("tools.cli.produce_cmd", "publish NDJSON events to a Kinesis stream through the producer"),
    "bench": ("tools.cli.bench_cmd", "benchmarks that print figures (--json for machines)"),
    "demo": ("tools.cli.demo_cmd", "the main job: run the pipeline on the embedded stack and verify it"),
    "up": (
        "tools.cli.stack_cmd",
        "start the local stack: the emulator, template.yaml deployed into it, and the live runtime that "
        "consumes and archives the stream in the background",
    ),
    "down": ("tools.cli.stack_cmd", "stop the live runtime, delete the local stack and stop the emulator"),
    "status": (
        "tools.cli.stack_cmd",
        "the emulator, the stack, the live runtime's lag and errors, and what is in the stream, tables and queues",
    ),
    "load": ("tools.cli.load_cmd", "drive the stream at a target rate (synthetic) or replay the archive, with lag"),
    "archive": ("tools.cli.archive_cmd", "list the S3 archive by type and date, or stream its events as NDJSON"),
    "soak": (
        "tools.cli.soak_cmd",
        "N events through the whole local pipeline under faults (and an emulator restart), verified: exit 1 on "
        "any loss or double count",
    ),
    "analytics": ("tools.cli.analytics_cmd", "run the Flink SQL windows over the archive, or package the Flink job"),
    "metrics": ("tools.cli.metrics_cmd", "the dashboard's charts: orders, views, top products, windows, bad rows, lag"),
    "dashboard": ("tools.cli.dashboard_cmd", "a local web page with the charts, refreshed while the stack runs"),
    "plan": (
        "tools.cli.plan_cmd",
        "shards, event source settings, capacity units, hot keys and monthly cost for a rate, from measured figures",
    ),
    "compare-live": (
        "tools.cli.compare_live",
        "a load run on the live local stack against the simulation of the local runtime, fitted from that run",
    ),
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``pipeline <command>: <what is wrong> (see ... --help)``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _parser() -> tuple[_Parser, dict[str, _Parser]]:
    parser = _Parser(
        prog="pipeline",
        description="Serverless event-streaming pipeline: produce, decode and inspect events; run benchmarks.",
        epilog="Run 'pipeline COMMAND --help' for a command's options. "
        "AWS access: --endpoint-url or PIPELINE_ENDPOINT_URL (unset means real AWS).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    subparsers: dict[str, _Parser] = {}
    for name, (_, summary) in COMMANDS.items():
        subparsers[name] = sub.add_parser(name, help=summary, description=summary)
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pipeline`` console script."""
    parser, subparsers = _parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Configure only the chosen command's parser, so one command's imports never slow another.
    chosen = next((a for a in args_list if a in COMMANDS), None)
    if chosen is not None:
        module = importlib.import_module(COMMANDS[chosen][0])
        module.configure(subparsers[chosen], chosen)
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    module = importlib.import_module(COMMANDS[args.command][0])
    # SIGTERM as SIGINT: cleanup (finally blocks, context managers) runs, so no child is left behind.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        message = _explain(exc)
        if message is None:
            raise
        logging.getLogger(__name__).debug("failure", exc_info=exc)
        print(f"pipeline {args.command}: {message}", file=sys.stderr)
        return 2


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _explain(exc: Exception) -> str | None:
    """One line for an error a user can fix; ``None`` for a bug (then the traceback is the right report)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    from pipeline.exceptions import PipelineError

    if isinstance(exc, PipelineError):
        return str(exc)
    if isinstance(exc, EndpointConnectionError):
        return f"{exc}: is the emulator running ('pipeline up', 'pipeline status') or the endpoint right?"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return f"{exc}: set AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    if isinstance(exc, NoRegionError):
        return f"{exc}: set AWS_REGION or pass --region"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"AWS refused {exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', exc)}"
    if isinstance(exc, BotoCoreError):
        return f"AWS: {exc}"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return None


if __name__ == "__main__":
    sys.exit(main())
