"""``pipeline generate``: the reference workload as NDJSON (same seed, same bytes)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from pipeline.events import Event
from tools.cli.args import non_negative_int
from tools.cli.io import Progress
from tools.generate import generate_events, write_ndjson

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--events", type=non_negative_int, default=10_000, help="how many events (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same events")
    parser.add_argument("--output", "-o", default="-", help="output file (default: standard output)")
    parser.epilog = (
        "The reference workload: 10,000 products with Zipf(1.0) popularity, 50,000 users in sessions of "
        "about 8 events; 55% product views, 25% user activity, 15% orders (1-5 items), 5% system "
        "metrics; event times spread over 6 hours from 2026-11-24T06:00Z."
    )


def run(args: argparse.Namespace) -> int:
    progress = Progress("generate", args.events)

    def counted() -> Iterator[Event]:
        for i, event in enumerate(generate_events(args.events, args.seed), start=1):
            if i % 1000 == 0:
                progress.advance(1000)
            yield event

    if args.output == "-":
        write_ndjson(counted(), sys.stdout.buffer)
    else:
        with Path(args.output).open("wb") as out:
            write_ndjson(counted(), out)
    progress.close()
    return 0
