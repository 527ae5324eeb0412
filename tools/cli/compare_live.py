"""``pipeline compare-live``: the local runtime's simulation against a load run on the live stack.

On the stack ``pipeline up`` started (its state dir and stage), each run:

1. snapshots the live runtime's status file (its ``timing``: where its time went) and the consumer log's size;
2. sends ``--rate`` events/s for ``--seconds`` of the reference workload through the project's producer,
   as ``pipeline load synthetic`` does (same schedule, same lag probe: ``put()`` to the table row);
3. waits until the runtime has counted them all and gone idle, snapshots its status again, and reads
   the invocations of the run from the consumer log (the handler's EMF ``BatchLatency`` and ``Records``);
4. fits the service times from that run alone (:func:`tools.plan.live_fit.fit_run`) and runs
   :func:`tools.plan.simulate_local.simulate_local` on the same load (``--sim-seeds`` seeds, averaged);
5. prints measured and simulated throughput and lag (p50, p95) with the relative errors.

``--save FILE`` keeps the runs' raw figures (JSON); ``--from-run FILE`` compares saved runs again without
a stack. Exit 0 when every figure agrees within ``--tolerance`` (30%), 1 when one does not, 2 for a bad
argument or a stack that is not there (one line on stderr, from :func:`tools.cli.main.main`, which also
handles SIGTERM as Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from pipeline.codecs import RecordFormat
from tools.cli.args import positive_int, positive_number
from tools.local.state import STATE_DIR_VARIABLE, default_state_dir
from tools.plan.live_fit import FitError, compare, fit_run, render

__all__ = ["configure", "run"]

_PROG = "pipeline compare-live"


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    parser.description = (
        "Run a short load on the live local stack, fit the local runtime's service times from that run, "
        "simulate the runtime (one process serving the shards in turn) on the same load, and print measured "
        "against simulated throughput and lag (p50, p95). Exit 1 when a figure is outside --tolerance."
    )
    parser.epilog = (
        "Needs 'pipeline up' (a runtime of this version: its status file reports 'timing'), or --from-run. "
        "The lag is put() to the user_activities row, as 'pipeline load synthetic' measures it. The machine's "
        "load average is reported: on a shared machine the service times move between runs."
    )
    parser.add_argument("--rate", type=positive_number, default=200.0, help="events per second (default 200)")
    parser.add_argument("--seconds", type=positive_number, default=60.0, help="how long each load runs (default 60)")
    parser.add_argument("--runs", type=positive_int, default=1, help="load runs, one after the other (default 1)")
    parser.add_argument(
        "--format", choices=[f.value for f in RecordFormat], default="json", help="record format (default json)"
    )
    parser.add_argument("--seed", type=int, default=1, help="workload seed of the first run (then +1 per run)")
    parser.add_argument("--sim-seeds", type=positive_int, default=5, help="simulations per run, averaged (default 5)")
    parser.add_argument("--tolerance", type=positive_number, default=0.30, help="agreement asked for (default 0.30)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help=f"the live stack's state dir (default ${STATE_DIR_VARIABLE}, else the per-user one)",
    )
    parser.add_argument("--stage", default="local", help="the live stack's stage (default local)")
    parser.add_argument(
        "--settle-timeout", type=positive_number, default=300.0, help="wait for the consumer at most (300 s)"
    )
    parser.add_argument("--save", type=Path, help="write the runs' raw figures to this JSON file")
    parser.add_argument("--from-run", type=Path, help="compare the runs saved in this file (no stack needed)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")


def _progress(line: str) -> None:
    print(f"{_PROG}: {line}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.from_run is not None:
        try:
            document = orjson.loads(args.from_run.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise FitError(f"{args.from_run}: not JSON ({exc})") from None
        runs = document["runs"] if isinstance(document, dict) and "runs" in document else None
        if not isinstance(runs, list) or not runs:
            raise FitError(f"{args.from_run}: no 'runs' list (write one with --save)")
    else:
        from tools.plan.live_run import LiveRun

        live = LiveRun(args.state_dir.absolute(), args.stage, record_format=args.format)
        runs = []
        for number in range(args.runs):
            print(
                f"{_PROG}: run {number + 1} of {args.runs}: {args.rate:g} events/s for {args.seconds:g} s",
                file=sys.stderr,
            )
            figures = live.run(
                args.rate,
                args.seconds,
                seed=args.seed + number,
                settle_timeout_s=args.settle_timeout,
                progress=_progress,
            )
            runs.append(figures)
        if args.save is not None:
            args.save.write_bytes(orjson.dumps({"runs": runs}, option=orjson.OPT_INDENT_2) + b"\n")
    rows = [compare(fit_run(raw), raw, sim_seeds=args.sim_seeds, tolerance=args.tolerance) for raw in runs]
    if args.json:
        sys.stdout.buffer.write(orjson.dumps({"runs": rows, "tolerance": args.tolerance}) + b"\n")
    else:
        print(render(rows, args.tolerance))
    return 0 if all(row["within_tolerance"] for row in rows) else 1


if __name__ == "__main__":  # the module's old name, kept working
    from tools.cli.main import main

    sys.exit(main(["compare-live", *sys.argv[1:]]))
