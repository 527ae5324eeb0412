"""``pipeline dashboard``: the charts on a local web page that refreshes itself while the stack runs.

One process serves the page and the JSON it polls; each poll reads every chart through the read API
(:mod:`pipeline.readapi`). Ctrl-C or SIGTERM stops it cleanly (the socket is closed, exit 130).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

from tools.cli.args import positive_int
from tools.cli.metrics_cmd import add_source_arguments

__all__ = ["configure", "run"]

_EPILOG = (
    "Serves http://127.0.0.1:PORT/ (a free port unless --port) and prints the URL. The page shows, for the day: "
    "orders and revenue per hour, product views per hour, the top products, the analytics job's orders_1h "
    "windows, bad rows per hour and the consumer's lag per shard, and polls the server every --refresh seconds; "
    "every poll reads each chart with one Query per page (never a Scan) or one GetMetricData. Chart.js is served "
    "from the repository (nothing is loaded from the internet). Ctrl-C or SIGTERM stops it."
)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0.2:
        raise argparse.ArgumentTypeError(f"must be at least 0.2 seconds, got {text}")
    return value


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    parser.epilog = _EPILOG
    add_source_arguments(parser)
    parser.set_defaults(day=None)  # the page's day is today at each poll unless --day is given
    parser.add_argument("--port", type=positive_int, default=0, help="listen on this port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="listen on this address (default 127.0.0.1)")
    parser.add_argument("--refresh", type=_seconds, default=5.0, help="seconds between the page's polls (default 5)")
    parser.add_argument("--top", type=positive_int, default=10, help="how many top products (default 10)")


def run(args: argparse.Namespace) -> int:
    from pipeline.settings import aws_client
    from tools.dashboard.server import DashboardServer
    from tools.dashboard.source import collect, resolve_source

    source = resolve_source(args.state_dir.absolute(), args.stage, endpoint_url=args.endpoint_url)
    dynamodb = aws_client("dynamodb", source.settings)
    cloudwatch = aws_client("cloudwatch", source.settings)
    reader = partial(collect, source, top=args.top, dynamodb=dynamodb, cloudwatch=cloudwatch)
    try:
        server = DashboardServer(args.host, args.port, reader, day=args.day, refresh_s=args.refresh)
    except OSError as exc:
        print(f"pipeline dashboard: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        print(f"pipeline dashboard: serving {source.where} at {server.url} (Ctrl-C stops)", file=sys.stderr)
        print(server.url, flush=True)
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        print("pipeline dashboard: stopped", file=sys.stderr)
    return 0
