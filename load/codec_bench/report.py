"""The human report of a codec benchmark, and the ``--help`` text that explains its figures."""

from __future__ import annotations

from typing import Final

from load.codec_bench.figures import (
    BATCH_RECORDS,
    DENSEST_CAPACITY_TARGET,
    JSON_RATIO_TARGET,
    KPL_RATIO_TARGET,
    SHARD_BYTES_PER_S,
    SHARD_RECORDS_PER_S,
    CodecBenchResult,
)
from pipeline.codecs import RecordFormat

__all__ = ["HELP", "render_table"]


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


HELP: Final = f"""\
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
