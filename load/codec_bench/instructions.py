"""Instruction counts of the codec benchmark's loops under callgrind: ratios a busy machine cannot move.

On a shared machine the wall-time ratios of ``pipeline bench codec`` move by a third from run to run
for the same code (the baseline and the decoder are timed at different moments). This counts
instructions instead: for each loop, this interpreter runs under ``valgrind --tool=callgrind`` twice,
the loop once then three times, and half the difference is one loop's instructions (setup, imports
and interpreter start-up cancel out). Hash randomisation is off (``PYTHONHASHSEED=0``), so a run is
repeatable to within a few tenths of a percent.

Loops, over the same reference events in batches of :data:`~load.codec_bench.figures.BATCH_RECORDS`
as the benchmark: ``orjson`` (the baseline: ``orjson.loads`` of each event's wire bytes, batches kept),
``msgspec`` (the typed decode alone), ``json`` and ``kpl`` (``decode_records`` on those formats).

Usage: ``python -m load.codec_bench.instructions [--events N] [--seed S] [LOOP ...]``. Needs valgrind
(exit 2 without it); about a minute per loop for 2,000 events. Instructions are not time (cache
misses and allocation are not weighed), so this complements the wall-time figures, never replaces them.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

import msgspec
import orjson

from load.codec_bench.figures import BATCH_RECORDS
from load.codec_bench.loops import batches, bench_records
from pipeline.codecs import RecordFormat, decode_records, encode_event, encode_records
from pipeline.events.decoder import decode_unchecked
from pipeline.partitioning import ShardMap
from pipeline.stream import StreamRecord
from tools.generate import generate_events

__all__ = ["LOOPS", "instructions_per_event", "main"]

LOOPS: Final = ("orjson", "msgspec", "json", "kpl")
_MODULE: Final = "load.codec_bench.instructions"  # not __name__: that is "__main__" under python -m
_COLLECTED: Final = re.compile(rb"Collected : (\d+)")
_Records = list[tuple[str, str, bytes, datetime]]


class _Workload(msgspec.Struct):
    wires: list[bytes]
    json: _Records
    kpl: _Records


def _write_workload(events: int, seed: int, path: Path) -> None:
    batch = list(generate_events(events, seed))
    shard_map = ShardMap.uniform(1)
    records = {
        fmt: [
            (r.shard_id, r.sequence_number, r.data, r.arrival)
            for r in bench_records(encode_records(batch, fmt, shard_map))
        ]
        for fmt in (RecordFormat.JSON, RecordFormat.KPL)
    }
    path.write_bytes(
        msgspec.msgpack.encode(
            _Workload([encode_event(e) for e in batch], records[RecordFormat.JSON], records[RecordFormat.KPL])
        )
    )


def _loop(name: str, workload: _Workload) -> Callable[[], None]:
    if name in ("orjson", "msgspec"):
        parse = orjson.loads if name == "orjson" else decode_unchecked
        wires = batches(workload.wires)

        def parse_all() -> None:
            for batch in wires:
                parsed = [parse(wire) for wire in batch]  # kept until the next batch, as in the benchmark
            del parsed

        return parse_all
    records = batches([StreamRecord(*r) for r in (workload.json if name == "json" else workload.kpl)])

    def decode_all() -> None:
        for batch in records:
            decoded = decode_records(batch)
        del decoded

    return decode_all


def _child(name: str, repeats: int, path: Path) -> None:
    loop = _loop(name, msgspec.msgpack.decode(path.read_bytes(), type=_Workload))
    gc.disable()  # as the benchmark times its loops
    for _ in range(repeats):
        loop()


def _collected(valgrind: str, name: str, repeats: int, path: Path) -> int:
    done = subprocess.run(  # noqa: S603 - valgrind running this module
        [
            valgrind,
            "--tool=callgrind",
            f"--callgrind-out-file={path.parent / f'callgrind.{name}.{repeats}.out'}",
            sys.executable,
            "-m",
            _MODULE,
            "--child",
            name,
            str(repeats),
            str(path),
        ],
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        check=False,
    )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-2:]
        raise RuntimeError(f"callgrind run of {name} failed ({done.returncode}): {' | '.join(tail)}")
    return int(found.group(1))


def instructions_per_event(valgrind: str, name: str, events: int, path: Path) -> float:
    """One pass of loop ``name`` over the workload at ``path``, in instructions per event."""
    return (_collected(valgrind, name, 3, path) - _collected(valgrind, name, 1, path)) / 2 / events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m load.codec_bench.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--events", type=int, default=2_000, help=f"reference events (default 2000; batches of {BATCH_RECORDS:,})"
    )
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("loops", nargs="*", help=f"loops to count, of: {' '.join(LOOPS)} (default: all)")
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]), Path(args.child[2]))
        return 0
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("instructions: valgrind is not on PATH (apt-get install valgrind)", file=sys.stderr)
        return 2
    unknown = sorted(set(args.loops) - set(LOOPS))
    if unknown:
        print(f"instructions: unknown loop {', '.join(unknown)}; expected some of {' '.join(LOOPS)}", file=sys.stderr)
        return 2
    if args.events < 1:
        print(f"instructions: --events must be at least 1, got {args.events}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="codec-instructions-") as tmp:
        path = Path(tmp) / "workload.msgpack"
        _write_workload(args.events, args.seed, path)
        counts: dict[str, float] = {}
        for name in args.loops or LOOPS:
            print(f"instructions: counting {name} ...", file=sys.stderr, flush=True)
            counts[name] = instructions_per_event(valgrind, name, args.events, path)
    base = counts.get("orjson")
    for name, count in counts.items():
        ratio = f"{count / base:.3f}x orjson" if base else ""
        print(f"{name:<8} {count:>10,.0f} instructions/event  {ratio}")
    return 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: subprocess.run kills the valgrind child on the way out


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("instructions: interrupted", file=sys.stderr)
        sys.exit(130)
