"""``python -m tools.cli.compare_live``: the local runtime's simulation against a load run on the live stack.

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
argument or a stack that is not there (one line on stderr). SIGTERM is handled as Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import NoReturn

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.codecs import RecordFormat
from pipeline.exceptions import PipelineError
from tools.local.state import STATE_DIR_VARIABLE, default_state_dir
from tools.plan.live_fit import FitError, compare, fit_run, render

__all__ = ["main"]

_PROG = "python -m tools.cli.compare_live"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _count(text: str) -> int:
    value = _positive(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text}")
    return int(value)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=_PROG)
    p.description = (
        "Run a short load on the live local stack, fit the local runtime's service times from that run, "
        "simulate the runtime (one process serving the shards in turn) on the same load, and print measured "
        "against simulated throughput and lag (p50, p95)."
    )
    p.epilog = (
        "Needs 'pipeline up' (a runtime of this version: its status file reports 'timing'), or --from-run. "
        "The lag is put() to the user_activities row, as 'pipeline load synthetic' measures it. The machine's "
        "load average is reported: on a shared machine the service times move between runs."
    )
    p.add_argument("--rate", type=_positive, default=200.0, help="events per second (default 200)")
    p.add_argument("--seconds", type=_positive, default=60.0, help="how long each load runs (default 60)")
    p.add_argument("--runs", type=_count, default=1, help="load runs, one after the other (default 1)")
    p.add_argument(
        "--format", choices=[f.value for f in RecordFormat], default="json", help="record format (default json)"
    )
    p.add_argument("--seed", type=int, default=1, help="workload seed of the first run (then +1 per run)")
    p.add_argument("--sim-seeds", type=_count, default=5, help="simulations per run, averaged (default 5)")
    p.add_argument("--tolerance", type=_positive, default=0.30, help="agreement asked for (default 0.30)")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help=f"the live stack's state dir (default ${STATE_DIR_VARIABLE}, else the per-user one)",
    )
    p.add_argument("--stage", default="local", help="the live stack's stage (default local)")
    p.add_argument("--settle-timeout", type=_positive, default=300.0, help="wait for the consumer at most (300 s)")
    p.add_argument("--save", type=Path, help="write the runs' raw figures to this JSON file")
    p.add_argument("--from-run", type=Path, help="compare the runs saved in this file (no stack needed)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    return p


def _progress(line: str) -> None:
    print(f"{_PROG}: {line}", file=sys.stderr)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if args.from_run is not None:
        document = orjson.loads(args.from_run.read_bytes())
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


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130
    except (FitError, PipelineError) as exc:
        message = str(exc)
    except (BotoCoreError, ClientError) as exc:
        message = f"AWS: {exc}: is the stack up ('pipeline up', 'pipeline status')?"
    except orjson.JSONDecodeError as exc:
        message = f"{args.from_run}: not JSON ({exc})"
    except OSError as exc:
        message = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
    print(f"{_PROG}: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
