"""What one codec benchmark measured: each format's figures, shard capacity, the targets, the ``--json`` shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from load.common import Target
from pipeline.codecs import RecordFormat
from pipeline.events import EventType

__all__ = [
    "BATCH_RECORDS",
    "DENSEST_CAPACITY_TARGET",
    "JSON_RATIO_TARGET",
    "KPL_RATIO_TARGET",
    "SHARD_BYTES_PER_S",
    "SHARD_RECORDS_PER_S",
    "CodecBenchResult",
    "FormatFigures",
    "KplBreakdown",
    "TypeFigures",
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
