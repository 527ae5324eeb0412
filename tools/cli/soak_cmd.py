"""``pipeline soak``: N events through the whole local pipeline under faults, verified against the oracle.

See :mod:`tools.soak.run` for what runs and :mod:`tools.soak.accounting` for how loss and double
counting are measured. Exit status: 0 when nothing was lost, double counted or mismatched, 1 otherwise,
2 for a usage error or an emulator that cannot start.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from pipeline.codecs import RecordFormat
from tools.cli.args import fraction, positive_int, positive_number

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--events", type=positive_int, default=10_000, help="unique events to send (default 10000)")
    parser.add_argument(
        "--fault-rate",
        type=fraction,
        default=0.05,
        help="probability of each fault: per HTTP attempt (throttles), per batch entry (partial failures), "
        "per invocation (handler crash), per batch (duplicate delivery), per event (late, resent); default 0.05",
    )
    parser.add_argument(
        "--format",
        choices=[f.value for f in RecordFormat],
        default=RecordFormat.JSON.value,
        help="record format the producer writes (default json; gzip-batch is the densest)",
    )
    parser.add_argument("--rate", type=positive_number, default=400.0, help="events sent per second (default 400)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the workload and of every fault draw")
    parser.add_argument("--no-restart", action="store_true", help="do not restart the emulator mid-run")
    parser.add_argument(
        "--state-dir", type=Path, help="keep the soak's stack state and logs here (default: a temp dir)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.epilog = (
        "It starts its own emulator (persistence on), deploys template.yaml into it and runs the live "
        "runtime with faults, in a scratch state dir: a 'pipeline up' stack is never touched. Faults: "
        "throttles and partial failures on every AWS call of the producer, the runtime and the consumer; "
        "handler crashes before, during and after a flush; duplicate deliveries; resent and late events; "
        "the emulator stopped (SIGTERM, it writes its snapshot) and restarted once half-way. Progress goes "
        "to stderr (one updating line on a terminal; otherwise a line when a phase starts and every 10 s). "
        "Exit 1 on any loss, double count or mismatch against the oracle."
    )


class _Progress:
    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._last = 0.0
        self._phase = ""

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        if self.tty:
            sys.stderr.write(f"\r\x1b[Ksoak: {line}")
            sys.stderr.flush()
        elif now - self._last >= 10.0 or line.split(":", 1)[0] != self._phase:  # a new phase shows at once
            self._last, self._phase = now, line.split(":", 1)[0]
            print(f"soak: {line}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def run(args: argparse.Namespace) -> int:
    from tools.soak.run import SoakOptions, run_soak

    options = SoakOptions(
        events=args.events,
        fault_rate=args.fault_rate,
        record_format=RecordFormat(args.format),
        rate=args.rate,
        seed=args.seed,
        restart=not args.no_restart,
        state_dir=args.state_dir,
    )
    progress = _Progress()
    try:
        report = run_soak(options, progress)
    finally:
        progress.close()
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report) + b"\n")
    else:
        print(_text(report))
    return 0 if report["verdict"]["ok"] else 1


def _text(r: dict[str, Any]) -> str:
    v, lag, mem = r["verdict"], r["lag_ms"], r["memory_peak_mib"]
    restart = r["emulator_restart"]
    away = f"after {restart['at_sent']} sends, {restart['outage_s']} s away" if restart else "none"
    lines = [
        f"soak of {r['events']} events, format {r['format']}, fault rate {r['fault_rate']}, seed {r['seed']}",
        f"  sent        {r['sent']['sends']} sends ({r['sent']['resent']} resends, {r['sent']['late']} late), "
        f"{r['sent']['put_calls']} PutRecords calls, {r['sent']['failed_entries']} failed entries resent",
        f"  consumed    {r['consumed']} (duplicates skipped {r['duplicates_skipped']}), bad rows {r['bad_rows']}",
        f"  LOST        {v['lost']} (tables {v['lost_in_tables']}, archive {v['lost_in_archive']})",
        f"  DOUBLE      {v['double_counted']}   mismatched items {v['mismatched_items']}",
        f"  archive     {v['archive_completeness']:.2%} complete, {v['archive_duplicates']} extra copies",
        f"  lag         p50 {lag.get('p50', 0)} ms, p99 {lag.get('p99', 0)} ms, max {lag.get('max', 0)} ms",
        f"  throughput  {r['throughput_events_per_s']} events/s ({r['seconds']['until_verified']} s to verified)",
        f"  memory      producer {mem.get('producer')} MiB, runtime {mem.get('runtime')} MiB, "
        f"emulator {mem.get('emulator')} MiB",
        f"  restart     {away}",
        f"  faults      {orjson.dumps(r['faults']).decode()}",
    ]
    lines += [f"  ! {example}" for example in v["examples"]]
    lines.append("OK: nothing lost, nothing counted twice" if v["ok"] else "FAILED: see above")
    return "\n".join(lines)
