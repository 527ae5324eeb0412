"""``pipeline bench BENCHMARK``: benchmarks that print figures, a table for people or ``--json`` for machines.

Each benchmark is a module under ``load/`` that exposes ``configure(parser)`` (its options) and
``cli(args) -> int`` (measure, print, exit status). It is imported only when it is the one chosen, so
one benchmark's imports (boto3, the emulator) never weigh on another's start-up or figures. Speed
targets print PASS/FAIL; they depend on the machine and never change the exit status.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any, Final

__all__ = ["BENCHMARKS", "configure", "run"]

# benchmark -> (module, one-line help). Adding a benchmark is one line here.
BENCHMARKS: Final = {
    "codec": (
        "load.bench_codec",
        "decode+validate cost of each record format against bare orjson.loads; shard capacity",
    ),
    "consumer": (
        "load.bench_consumer",
        "consumer cost per event on the emulator: calls, writes vs floor, seed style, cold start",
    ),
    "e2e": ("load.bench_e2e", "events/s producer -> metrics on the embedded stack, project vs seed style, verified"),
    "analytics": (
        "load.bench_analytics",
        "events/s of the Flink job over an archive next to the Python reference; start-up apart, verified",
    ),
}


class _BenchmarkParser(argparse.ArgumentParser):
    """One benchmark's parser: imports the benchmark's module and adds its options when first parsed.

    ``pipeline bench --help`` therefore lists every benchmark without importing any of them.
    """

    def __init__(self, *args: Any, module: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._module = module

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        if self._module:
            module, self._module = self._module, ""
            importlib.import_module(module).configure(self)
        return super().parse_known_args(*args, **kwargs)


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True, parser_class=_BenchmarkParser)
    for benchmark, (module, summary) in BENCHMARKS.items():
        sub.add_parser(benchmark, help=summary, description=summary, module=module)
    parser.epilog = "Run 'pipeline bench BENCHMARK --help' for what each figure means."


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(BENCHMARKS[args.benchmark][0])
    return int(module.cli(args))
