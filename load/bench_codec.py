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
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import math
import platform
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from time import thread_time
from typing import Any, Final, TypeVar

import orjson

from load.common import Target, add_output_options, noter, positive_int
from pipeline.codecs import OutputRecord, RecordFormat, decode_record, decode_records, encode_event, encode_records
from pipeline.codecs.kpl import aggregated_record_class, subrecord_payloads
from pipeline.events import Event, EventType
from pipeline.exceptions import DecodeError, PipelineError
from pipeline.partitioning import ShardMap
from pipeline.stream import StreamRecord
from tools.generate import generate_events

__all__ = [
    "DENSEST_CAPACITY_TARGET",
    "JSON_RATIO_TARGET",
    "KPL_RATIO_TARGET",
    "SHARD_BYTES_PER_S",
    "SHARD_RECORDS_PER_S",
    "BenchCheckError",
    "CodecBenchResult",
    "FormatFigures",
    "KplBreakdown",
    "Target",
    "TypeFigures",
    "cli",
    "configure",
    "render_table",
    "run",
    "shard_capacity",
]

SHARD_BYTES_PER_S: Final = 1024 * 1024
"""Kinesis write limit of one shard: bytes of data plus partition keys per second."""
SHARD_RECORDS_PER_S: Final = 1_000
"""Kinesis write limit of one shard: records per second (an aggregate or a batch counts once)."""
JSON_RATIO_TARGET: Final = 1.0
KPL_RATIO_TARGET: Final = 1.5
DENSEST_CAPACITY_TARGET: Final = 20_000
BATCH_RECORDS: Final = 1_000
"""Records per decoded batch: the template's default ``ConsumerBatchSize``."""
_T = TypeVar("_T")

_SHARD: Final = "shardId-000000000000"
_ARRIVAL: Final = datetime(2026, 11, 25, tzinfo=UTC)  # after every reference event: none is in the future


_KPL_HEAD: Final = 4  # magic bytes
_KPL_TAIL: Final = 16  # MD5 digest
_KPL_FORMATS: Final = (RecordFormat.KPL, RecordFormat.KPL_GZIP)


class BenchCheckError(PipelineError):
    """A format did not decode back to exactly its input events: the codec is wrong, the figures meaningless."""


@dataclass(frozen=True, slots=True)
class KplBreakdown:
    """Where a KPL record's decode time goes, in µs per event; the rest of decode is gunzip, JSON, validation."""

    md5_us: float
    """``hashlib.md5`` over each aggregate's protobuf body: the integrity check alone."""
    protobuf_us: float
    """``AggregatedRecord.ParseFromString`` over each body alone."""
    deaggregate_us: float
    """The whole de-aggregation the decoder does (``subrecord_payloads``): MD5, parse, index checks."""


def shard_capacity(bytes_per_event: float, events_per_record: float) -> tuple[float, str]:
    """Events/s one shard takes, and the limit that binds: ``"bytes"`` (1 MiB/s) or ``"records"`` (1,000/s)."""
    by_bytes = SHARD_BYTES_PER_S / bytes_per_event
    by_records = SHARD_RECORDS_PER_S * events_per_record
    return (by_bytes, "bytes") if by_bytes < by_records else (by_records, "records")


@dataclass(frozen=True, slots=True)
class FormatFigures:
    """One format's figures over all input events; per-event figures divide by ``events``."""

    format: RecordFormat
    events: int
    records: int
    total_bytes: int
    """Sum of ``OutputRecord.size`` (data plus partition key): what Kinesis counts."""
    encode_us: float
    """``encode_records`` µs per event, best round (informational)."""
    decode_us: float
    """``decode_record`` µs per event (detect, gunzip, de-aggregate, JSON, validate), best round."""
    ratio: float
    """``decode_us`` over the baseline's µs per event."""
    kpl: KplBreakdown | None

    @property
    def events_per_record(self) -> float:
        return self.events / self.records

    @property
    def bytes_per_event(self) -> float:
        return self.total_bytes / self.events

    @property
    def capacity(self) -> float:
        """Events/s one shard takes in this format."""
        return shard_capacity(self.bytes_per_event, self.events_per_record)[0]

    @property
    def bound_by(self) -> str:
        return shard_capacity(self.bytes_per_event, self.events_per_record)[1]


@dataclass(frozen=True, slots=True)
class TypeFigures:
    """The json format's decode cost for one event type against the baseline over the same events."""

    event_type: EventType
    events: int
    baseline_us: float | None
    decode_us: float | None
    ratio: float | None
    """``None`` when the workload held no event of this type."""


@dataclass(frozen=True, slots=True)
class CodecBenchResult:
    """Everything one ``run`` measured. ``to_json`` is the ``--json`` output (stable keys, numbers)."""

    events: int
    seed: int
    repeat: int
    python: str
    baseline_us: float
    """A bare ``orjson.loads`` of each event's canonical wire bytes, µs per event, best round (batches kept)."""
    baseline_discard_us: float
    """The same, each parsed dict thrown away at once (informational)."""
    formats: tuple[FormatFigures, ...]
    json_by_type: tuple[TypeFigures, ...]

    def figures(self, record_format: RecordFormat) -> FormatFigures:
        return next(f for f in self.formats if f.format is record_format)

    @property
    def densest(self) -> FormatFigures:
        """The format with the highest capacity per shard."""
        return max(self.formats, key=lambda f: f.capacity)

    @property
    def targets(self) -> dict[str, Target]:
        densest = self.densest
        return {
            "json_decode_ratio": Target(
                f"json decode+validate <= {JSON_RATIO_TARGET}x baseline",
                self.figures(RecordFormat.JSON).ratio,
                JSON_RATIO_TARGET,
                at_most=True,
            ),
            "kpl_decode_ratio": Target(
                f"kpl decode+validate <= {KPL_RATIO_TARGET}x baseline",
                self.figures(RecordFormat.KPL).ratio,
                KPL_RATIO_TARGET,
                at_most=True,
            ),
            "densest_capacity": Target(
                f"densest format ({densest.format}) >= {DENSEST_CAPACITY_TARGET:,} events/s/shard",
                densest.capacity,
                DENSEST_CAPACITY_TARGET,
                at_most=False,
            ),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": "codec",
            "events": self.events,
            "seed": self.seed,
            "repeat": self.repeat,
            "python": self.python,
            "shard_limits": {"bytes_per_s": SHARD_BYTES_PER_S, "records_per_s": SHARD_RECORDS_PER_S},
            "baseline_us_per_event": self.baseline_us,
            "baseline_discard_us_per_event": self.baseline_discard_us,
            "batch_records": BATCH_RECORDS,
            "formats": {f.format.value: _format_json(f) for f in self.formats},
            "json_by_event_type": {
                t.event_type.value: {
                    "events": t.events,
                    "baseline_us_per_event": t.baseline_us,
                    "decode_us_per_event": t.decode_us,
                    "ratio_to_baseline": t.ratio,
                }
                for t in self.json_by_type
            },
            "densest_format": self.densest.format.value,
            "json_single_event_capacity_events_per_s": self.figures(RecordFormat.JSON).capacity,
            "targets": {
                key: {
                    "label": t.label,
                    "measured": t.measured,
                    "limit": t.limit,
                    "comparison": "<=" if t.at_most else ">=",
                    "passed": t.passed,
                }
                for key, t in self.targets.items()
            },
        }


def _format_json(f: FormatFigures) -> dict[str, Any]:
    return {
        "records": f.records,
        "total_bytes": f.total_bytes,
        "events_per_record": f.events_per_record,
        "bytes_per_event": f.bytes_per_event,
        "encode_us_per_event": f.encode_us,
        "decode_us_per_event": f.decode_us,
        "ratio_to_baseline": f.ratio,
        "capacity_events_per_s": f.capacity,
        "capacity_bound_by": f.bound_by,
        "kpl_breakdown": None
        if f.kpl is None
        else {
            "md5_us_per_event": f.kpl.md5_us,
            "protobuf_us_per_event": f.kpl.protobuf_us,
            "deaggregate_us_per_event": f.kpl.deaggregate_us,
        },
    }


# --------------------------------------------------------------------------- timed loops
# Each loop does one thing per item and nothing else, so loops compare like for like.


def _loads_all(batches: Sequence[Sequence[bytes]]) -> None:
    loads = orjson.loads
    for batch in batches:
        parsed = [loads(wire) for wire in batch]  # kept until the next batch, as the decoder's results are
    del parsed


def _loads_discard(wires: Sequence[bytes]) -> None:
    loads = orjson.loads
    for wire in wires:
        loads(wire)


def _decode_all(batches: Sequence[Sequence[StreamRecord]]) -> None:
    for batch in batches:
        decoded = decode_records(batch)  # what the consumer calls, once per batch
    del decoded


def _batches(items: Sequence[_T]) -> list[Sequence[_T]]:
    return [items[i : i + BATCH_RECORDS] for i in range(0, len(items), BATCH_RECORDS)]


def _md5_all(bodies: Sequence[bytes]) -> None:
    md5 = hashlib.md5
    for body in bodies:
        md5(body).digest()  # the KPL format's checksum, computed as the decoder does


def _parse_all(bodies: Sequence[bytes]) -> None:
    message = aggregated_record_class()
    for body in bodies:
        message().ParseFromString(body)


def _deaggregate_all(records: Sequence[bytes]) -> None:
    for data in records:
        subrecord_payloads(data)


def _encode_all(events: Sequence[Event], record_format: RecordFormat, shard_map: ShardMap) -> None:
    encode_records(events, record_format, shard_map)


def _seconds(loop: Callable[[], None]) -> float:
    """Wall time of one call of ``loop``, with the cyclic GC off (its pauses are noise here)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = thread_time()
        loop()
        return thread_time() - start
    finally:
        if enabled:
            gc.enable()


def _bench_records(records: Sequence[OutputRecord]) -> list[StreamRecord]:
    return [StreamRecord(_SHARD, _sequence_number(i), r.data, _ARRIVAL) for i, r in enumerate(records)]


def _type_of(record: StreamRecord) -> EventType:
    return EventType(orjson.loads(record.data)["event_type"])


def _sequence_number(index: int) -> str:
    return f"{49_000_000_000 + index:056d}"  # the width of a real Kinesis sequence number


def _check_round_trip(record_format: RecordFormat, records: Sequence[OutputRecord], events: Sequence[Event]) -> None:
    """Raise :class:`BenchCheckError` unless ``records`` decode to exactly ``events``, without a DecodeError."""
    decoded: list[Event] = []
    for index, record in enumerate(records):
        for result in decode_record(record.data, _SHARD, _sequence_number(index)):
            if isinstance(result, DecodeError):
                raise BenchCheckError(f"{record_format}: record {index} does not decode: {result.reason}")
            decoded.append(result.event)
    if len(decoded) != len(events):
        raise BenchCheckError(f"{record_format}: {len(decoded)} events decoded from {len(events)} encoded")
    if Counter(e.event_id for e in decoded) != Counter(e.event_id for e in events):
        raise BenchCheckError(f"{record_format}: decoded event ids differ from the encoded ones")
    expected = {e.event_id: e for e in events}
    if any(e != expected[e.event_id] for e in decoded):
        raise BenchCheckError(f"{record_format}: a decoded event differs from the one encoded")


# --------------------------------------------------------------------------- the run


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
        ("baseline", "all"): partial(_loads_all, _batches(wires)),
        ("baseline_discard", "all"): partial(_loads_discard, wires),
    }
    for fmt in RecordFormat:
        note(f"encoding and checking {fmt}")
        records = encode_records(batch, fmt, shard_map)
        _check_round_trip(fmt, records, batch)
        encoded[fmt] = records
        loops["decode", fmt] = partial(_decode_all, _batches(_bench_records(records)))
        if fmt in _KPL_FORMATS:
            bodies = [r.data[_KPL_HEAD:-_KPL_TAIL] for r in records]
            loops["md5", fmt] = partial(_md5_all, bodies)
            loops["protobuf", fmt] = partial(_parse_all, bodies)
            loops["deaggregate", fmt] = partial(_deaggregate_all, [r.data for r in records])
    json_records = encoded[RecordFormat.JSON]
    by_type = Counter(r.events[0].event_type for r in json_records)
    for event_type in EventType:
        chosen = [r for r in _bench_records(json_records) if json_records[0].events and _type_of(r) is event_type]
        if chosen:
            loops["baseline", event_type] = partial(_loads_all, _batches([r.data for r in chosen]))
            loops["json", event_type] = partial(_decode_all, _batches(chosen))
    for fmt in RecordFormat:  # last in each round: encoding leaves the most garbage behind
        loops["encode", fmt] = partial(_encode_all, batch, fmt, shard_map)

    best = dict.fromkeys(loops, math.inf)
    for round_number in range(1, repeat + 1):
        note(f"timing round {round_number}/{repeat}")
        gc.collect()  # start each round clean; collections never run inside a timed loop
        for key, loop in loops.items():
            best[key] = min(best[key], _seconds(loop))

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


# --------------------------------------------------------------------------- output


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def render_table(result: CodecBenchResult) -> str:
    """The human report: figures, breakdowns, capacity and targets with PASS/FAIL."""
    lines = [
        f"codec benchmark: {result.events:,} reference events (seed {result.seed}), best of {result.repeat} "
        f"round(s), Python {result.python}",
        "",
        f"baseline: bare orjson.loads of each event's wire bytes, batches of {BATCH_RECORDS:,} kept: "
        f"{result.baseline_us:.2f} us/event (each dict thrown away at once: {result.baseline_discard_us:.2f})",
        "",
        f"{'format':<11} {'records':>8} {'ev/record':>10} {'bytes/ev':>9} {'encode us':>10} {'decode us':>10} "
        f"{'x baseline':>11} {'ev/s/shard':>11}  bound by",
    ]
    for f in result.formats:
        lines.append(
            f"{f.format:<11} {f.records:>8,} {f.events_per_record:>10,.1f} {f.bytes_per_event:>9,.1f} "
            f"{f.encode_us:>10.2f} {f.decode_us:>10.2f} {_ratio(f.ratio):>11} {f.capacity:>11,.0f}  {f.bound_by}"
        )
    lines += [
        "",
        "KPL decode breakdown (us/event; the rest of decode is gunzip, JSON and validation):",
        f"{'format':<11} {'MD5 check':>10} {'protobuf':>10} {'deaggregate':>12} {'decode':>10} {'rest':>10}",
    ]
    for f in result.formats:
        if f.kpl is not None:
            lines.append(
                f"{f.format:<11} {f.kpl.md5_us:>10.2f} {f.kpl.protobuf_us:>10.2f} {f.kpl.deaggregate_us:>12.2f} "
                f"{f.decode_us:>10.2f} {f.decode_us - f.kpl.deaggregate_us:>10.2f}"
            )
    lines += [
        "",
        "json decode+validate by event type (us/event):",
        f"{'event type':<14} {'events':>8} {'baseline':>10} {'decode':>10} {'x baseline':>11}",
    ]
    for t in result.json_by_type:
        lines.append(
            f"{t.event_type:<14} {t.events:>8,} {_us(t.baseline_us):>10} {_us(t.decode_us):>10} {_ratio(t.ratio):>11}"
        )
    json_capacity = result.figures(RecordFormat.JSON).capacity
    lines += [
        "",
        f"shard limits: {SHARD_BYTES_PER_S:,} bytes/s and {SHARD_RECORDS_PER_S:,} records/s; "
        f"json, one event per record: {json_capacity:,.0f} events/s/shard",
        "",
        "targets:",
    ]
    for target in result.targets.values():
        measured = f"{target.measured:.2f}x" if target.at_most else f"{target.measured:,.0f}"
        lines.append(f"  {'PASS' if target.passed else 'FAIL'}  {target.label:<54} measured {measured}")
    return "\n".join(lines)


_HELP: Final = f"""\
figures (one run, the same reference events for every format; times are the best of --repeat rounds):
  baseline      us/event for a bare orjson.loads of each event's canonical wire bytes: the floor for any
                JSON reader
  records       Kinesis records encode_records makes for one shard (capacity is per shard)
  ev/record     events / records
  bytes/ev      sum of record sizes (data + partition key, what Kinesis counts) / events
  encode us     encode_records, us/event (informational)
  decode us     decode_record over every record, us/event: detect the format, gunzip, de-aggregate,
                parse JSON and validate into Event objects
  x baseline    decode us / baseline us
  ev/s/shard    capacity of one shard: min({SHARD_BYTES_PER_S:,} bytes/s / bytes per event,
                {SHARD_RECORDS_PER_S:,} records/s x events per record)
  bound by      which of those two limits binds
  KPL breakdown us/event in the MD5 check alone, in protobuf parsing alone, in the whole de-aggregation
                (MD5 + parse + user-record walk) and the rest of decode (gunzip, JSON, validation)
  by event type the json format per event type against the baseline over the same events: which
                validator costs most
targets (PASS/FAIL; they depend on the machine and never change the exit status):
  json decode+validate <= {JSON_RATIO_TARGET}x baseline; kpl decode+validate <= {KPL_RATIO_TARGET}x baseline;
  the densest format (highest capacity) >= {DENSEST_CAPACITY_TARGET:,} events/s/shard
correctness: every format must decode back to exactly its input events with no decode error, else the
  benchmark stops (exit 1). Exit 2: usage error."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events", type=positive_int, default=20_000, help="reference events to measure (default 20000)"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="workload seed; the same seed gives the same events (default 1)"
    )
    parser.add_argument("--repeat", type=positive_int, default=5, help="timing rounds; the best is kept (default 5)")
    add_output_options(parser, _HELP)


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
