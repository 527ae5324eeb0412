"""``pipeline bench codec``: what decoding and validating costs in each record format, and what a shard carries.

One run, one set of events (the reference workload, ``generate_events(events, seed)``), every format:

- the baseline is a bare ``orjson.loads`` of each event's canonical wire bytes (``encode_event``): the
  least any JSON reader can do per event. Like the decoder, it keeps the batch it parsed (a consumer
  holds its batch's events): both work in batches of :data:`BATCH_RECORDS` records (the template's
  default ``ConsumerBatchSize``), each batch's results alive until the next batch. Keeping results
  costs memory traffic that a loop throwing each dict away would not pay, so the same rule applies
  to both sides; the throw-away figure is printed too (``baseline_discard``);
- each format's events are packed with ``encode_records`` for one shard (capacity is per shard), then
  ``decode_records`` (the consumer's call) turns every batch back into validated
  :class:`~pipeline.events.Event` objects; its cost per event is compared with the baseline's;
- capacity per shard is what Kinesis' two write limits allow, 1 MiB/s and 1,000 records/s, given the
  format's bytes per event and events per record.

Timing: ``time.thread_time`` (the CPU time of the timing thread: a busy neighbour on a shared machine
does not count) around whole loops with the cyclic GC off, the best (minimum) of ``repeat`` rounds.
Every round runs every loop in turn (baseline, then each format, then the breakdowns), so all of them
see the same machine state. The figures depend on the machine; the
targets are printed as PASS/FAIL, never asserted by a test.

Correctness is checked before anything is timed: every format must decode back to exactly the input
events, with no :class:`~pipeline.exceptions.DecodeError`, else :class:`BenchCheckError` is raised.
Not thread-safe (it switches the process-wide GC off while timing).
The parts live in ``load/codec_bench/`` (figures, timed loops, report).
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import sys
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Final

import orjson

from load.codec_bench.figures import CodecBenchResult, FormatFigures, KplBreakdown, TypeFigures
from load.codec_bench.loops import (
    BenchCheckError,
    batches,
    bench_records,
    check_round_trip,
    deaggregate_all,
    decode_all,
    encode_all,
    loads_all,
    loads_discard,
    md5_all,
    parse_all,
    seconds,
    type_of,
)
from load.codec_bench.report import HELP, render_table
from load.common import add_output_options, noter, positive_int
from pipeline.codecs import OutputRecord, RecordFormat, encode_event, encode_records
from pipeline.events import EventType
from pipeline.partitioning import ShardMap
from tools.generate import generate_events

__all__ = ["cli", "configure", "run"]
"""The parts (results, figures, report) are imported from their own modules under ``load/``."""

_KPL_HEAD: Final = 4  # magic bytes
_KPL_TAIL: Final = 16  # MD5 digest
_KPL_FORMATS: Final = (RecordFormat.KPL, RecordFormat.KPL_GZIP)


def run(events: int, seed: int, repeat: int, *, progress: Callable[[str], None] | None = None) -> CodecBenchResult:
    """Measure every format on ``generate_events(events, seed)``; best of ``repeat`` rounds.

    Raises :class:`ValueError` for ``events`` or ``repeat`` below 1, and :class:`BenchCheckError` if a
    format does not decode back to its input events. ``progress`` receives short notes as it goes.
    """
    if events < 1 or repeat < 1:
        raise ValueError(f"events and repeat must be at least 1, got {events} and {repeat}")
    note = progress or (lambda _message: None)
    note(f"generating {events:,} reference events (seed {seed})")
    batch = list(generate_events(events, seed))
    wires = [encode_event(e) for e in batch]
    shard_map = ShardMap.uniform(1)

    encoded: dict[RecordFormat, list[OutputRecord]] = {}
    # (what, format or event type) -> loop; insertion order is the order within each round.
    loops: dict[tuple[str, str], Callable[[], None]] = {
        ("baseline", "all"): partial(loads_all, batches(wires)),
        ("baseline_discard", "all"): partial(loads_discard, wires),
    }
    for fmt in RecordFormat:
        note(f"encoding and checking {fmt}")
        records = encode_records(batch, fmt, shard_map)
        check_round_trip(fmt, records, batch)
        encoded[fmt] = records
        loops["decode", fmt] = partial(decode_all, batches(bench_records(records)))
        if fmt in _KPL_FORMATS:
            bodies = [r.data[_KPL_HEAD:-_KPL_TAIL] for r in records]
            loops["md5", fmt] = partial(md5_all, bodies)
            loops["protobuf", fmt] = partial(parse_all, bodies)
            loops["deaggregate", fmt] = partial(deaggregate_all, [r.data for r in records])
    json_records = encoded[RecordFormat.JSON]
    by_type = Counter(r.events[0].event_type for r in json_records)
    for event_type in EventType:
        chosen = [r for r in bench_records(json_records) if json_records[0].events and type_of(r) is event_type]
        if chosen:
            loops["baseline", event_type] = partial(loads_all, batches([r.data for r in chosen]))
            loops["json", event_type] = partial(decode_all, batches(chosen))
    for fmt in RecordFormat:  # last in each round: encoding leaves the most garbage behind
        loops["encode", fmt] = partial(encode_all, batch, fmt, shard_map)

    best = dict.fromkeys(loops, math.inf)
    for round_number in range(1, repeat + 1):
        note(f"timing round {round_number}/{repeat}")
        gc.collect()  # start each round clean; collections never run inside a timed loop
        for key, loop in loops.items():
            best[key] = min(best[key], seconds(loop))

    def per_event(key: tuple[str, str], count: int = events) -> float:
        return best[key] / count * 1e6

    baseline = per_event(("baseline", "all"))
    baseline_discard = per_event(("baseline_discard", "all"))
    formats = []
    for fmt, records in encoded.items():
        decode = per_event(("decode", fmt))
        kpl = None
        if fmt in _KPL_FORMATS:
            kpl = KplBreakdown(per_event(("md5", fmt)), per_event(("protobuf", fmt)), per_event(("deaggregate", fmt)))
        total_bytes = sum(r.size for r in records)
        encode = per_event(("encode", fmt))
        formats.append(FormatFigures(fmt, events, len(records), total_bytes, encode, decode, decode / baseline, kpl))
    types = []
    for event_type in EventType:
        count = by_type[event_type]
        if not count:
            types.append(TypeFigures(event_type, 0, None, None, None))
            continue
        type_baseline = per_event(("baseline", event_type), count)
        type_decode = per_event(("json", event_type), count)
        types.append(TypeFigures(event_type, count, type_baseline, type_decode, type_decode / type_baseline))
    return CodecBenchResult(
        events, seed, repeat, platform.python_version(), baseline, baseline_discard, tuple(formats), tuple(types)
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events", type=positive_int, default=20_000, help="reference events to measure (default 20000)"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="workload seed; the same seed gives the same events (default 1)"
    )
    parser.add_argument("--repeat", type=positive_int, default=5, help="timing rounds; the best is kept (default 5)")
    add_output_options(parser, HELP)


_note = noter("codec")


def cli(args: argparse.Namespace) -> int:
    """Run with the parsed options and print; 1 if a format fails the round-trip check."""
    try:
        result = run(args.events, args.seed, args.repeat, progress=_note)
    except BenchCheckError as exc:
        print(f"pipeline bench codec: correctness check failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")
    else:
        print(render_table(result))
    return 0
