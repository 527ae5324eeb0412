"""What one consumer benchmark measured: the figures of each part, the targets, the ``--json`` shape."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from load.common import Target
from load.consumer_bench.counting import CallCounts, TableWrites
from pipeline.codecs import RecordFormat
from pipeline.metrics.flush import WriterStats

__all__ = [
    "API_CALLS_TARGET",
    "CPU_US_TARGET",
    "DEDUP_WRITE_UNITS_TARGET",
    "IMPORT_RATIO_TARGET",
    "ITEM_WRITES_TARGET",
    "ColdStartFigures",
    "ConsumerBenchResult",
    "FloorFigures",
    "RunFigures",
    "Verification",
]

ITEM_WRITES_TARGET: Final = 1.15
"""Item writes at most this many times the floor."""
API_CALLS_TARGET: Final = 0.1
"""AWS API calls per event, at most."""
DEDUP_WRITE_UNITS_TARGET: Final = 0.02
"""Extra DynamoDB write units per event for the dedup window, at most."""
CPU_US_TARGET: Final = 150.0
"""Consumer CPU per event, µs, at most (its AWS calls included)."""
IMPORT_RATIO_TARGET: Final = 1.5
"""Handler import wall time at most this many times ``import boto3``'s."""


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One consumer over its events: wall and CPU seconds of the processing loop, and its calls."""

    events: int
    invocations: int
    wall_s: float
    cpu_s: float
    emulator_cpu_s: float | None
    """The emulator's CPU meanwhile (only when this run started it)."""
    calls: CallCounts
    writer: WriterStats | None = None
    """The writer's own stats summed over flushes (the project's consumer only)."""
    effects: int | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.events * 1e6

    @property
    def emulator_cpu_us(self) -> float | None:
        return None if self.emulator_cpu_s is None else self.emulator_cpu_s / self.events * 1e6

    def per_event(self, count: int) -> float:
        return count / self.events

    def to_json(self) -> dict[str, Any]:
        c = self.calls
        figures = asdict(self)
        figures["calls"].pop("watched")
        return {
            **figures,
            "events_per_s": self.events_per_s,
            "cpu_us_per_event": self.cpu_us,
            "emulator_cpu_us_per_event": self.emulator_cpu_us,
            "api_calls": c.api_calls,
            "api_calls_per_event": self.per_event(c.api_calls),
            "http_attempts_per_event": self.per_event(c.attempts),
            "item_writes": c.item_writes,
            "item_writes_per_event": self.per_event(c.item_writes),
            "item_reads_per_event": self.per_event(c.item_reads),
        }


@dataclass(frozen=True, slots=True)
class FloorFigures:
    """The least any writer must do for these batches, and the consumer's CPU on the in-memory store."""

    events: int
    batches: int
    items: int
    """Sum over batches of the distinct ``(table, key)`` the batch's effects touch."""
    items_by_table: Mapping[str, int]
    messages: int
    """Sum over batches of the distinct ``(queue, dedup_id)`` the batch sends."""
    write_calls: int
    """Those items and messages in full calls: ``ceil(items / 25) + ceil(messages / 10)`` per batch."""
    effects: int
    cpu_s: float
    """Process CPU of the same processor on :class:`MemoryStore`: decode, plugins, coalescing, no AWS."""

    @property
    def items_per_event(self) -> float:
        return self.items / self.events

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.events * 1e6


@dataclass(frozen=True, slots=True)
class ColdStartFigures:
    """Wall seconds of ``python -c CODE`` in a fresh process, best of ``rounds`` each."""

    rounds: int
    interpreter_s: float
    boto3_s: float
    handler_s: float
    handler_trace_disabled_s: float

    @property
    def ratio(self) -> float:
        return self.handler_s / self.boto3_s

    @property
    def ratio_trace_disabled(self) -> float:
        return self.handler_trace_disabled_s / self.boto3_s


@dataclass(frozen=True, slots=True)
class Verification:
    """The project's run against the oracle. ``problems`` is empty when everything matched."""

    tables: int
    items: int
    messages_expected: int
    messages_queued: int | None
    bad_rows: int
    effects_match: bool | None
    """Both passes produced the same number of effects (``None``: the real run retried a batch)."""
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class ConsumerBenchResult:
    """Everything one :func:`run` measured. ``to_json`` is the ``--json`` output (stable keys)."""

    events: int
    seed: int
    batch_size: int
    python: str
    endpoint: str
    embedded: bool
    project: RunFigures
    floor: FloorFigures
    seed_style: RunFigures
    cold_start: ColdStartFigures
    verification: Verification
    units: Mapping[str, Any] = field(default_factory=dict)
    """Capacity units per event by case (:func:`load.consumer_bench.unit_report.measure_units`)."""

    @property
    def dedup(self) -> TableWrites:
        """What the dedup window put into ``event_dedup``, counted on the wire."""
        return self.project.calls.watched

    @property
    def item_writes_to_floor(self) -> float:
        return self.project.calls.item_writes / self.floor.items if self.floor.items else math.inf

    @property
    def speedup(self) -> float:
        return self.project.events_per_s / self.seed_style.events_per_s

    @property
    def targets(self) -> dict[str, Target]:
        p, cold, limit = self.project, self.cold_start, IMPORT_RATIO_TARGET
        return {
            "item_writes_vs_floor": Target(
                f"item writes <= {ITEM_WRITES_TARGET}x floor", self.item_writes_to_floor, ITEM_WRITES_TARGET, True
            ),
            "api_calls_per_event": Target(
                f"AWS API calls <= {API_CALLS_TARGET} per event", p.per_event(p.calls.api_calls), API_CALLS_TARGET, True
            ),
            "dedup_write_units_per_event": Target(
                f"dedup window <= {DEDUP_WRITE_UNITS_TARGET} extra write units per event",
                self.dedup.write_units / self.events,
                DEDUP_WRITE_UNITS_TARGET,
                True,
            ),
            "cpu_us_per_event": Target(f"consumer CPU <= {CPU_US_TARGET:g} us/event", p.cpu_us, CPU_US_TARGET, True),
            # The template's default (Tracing=PassThrough) deploys with POWERTOOLS_TRACE_DISABLED=true.
            "handler_import_ratio": Target(
                f"handler import <= {limit}x import boto3 (template default)", cold.ratio_trace_disabled, limit, True
            ),
            "handler_import_ratio_xray": Target(
                f"same with Tracing=Active (X-Ray SDK), <= {limit}x", cold.ratio, limit, True
            ),
        }

    def to_json(self) -> dict[str, Any]:
        f, cold = self.floor, self.cold_start
        return {
            "benchmark": "consumer",
            "events": self.events,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "record_format": RecordFormat.JSON.value,
            "python": self.python,
            "endpoint": self.endpoint,
            "embedded_emulator": self.embedded,
            "project": self.project.to_json(),
            "floor": {
                **asdict(f),
                "items_per_event": f.items_per_event,
                "write_calls_per_event": f.write_calls / f.events,
                "cpu_us_per_event": f.cpu_us,
            },
            "item_writes_to_floor": self.item_writes_to_floor,
            "seed_style": self.seed_style.to_json(),
            "speedup_vs_seed_style": self.speedup,
            "dedup": {
                **asdict(self.dedup),
                "write_units_per_event": self.dedup.write_units / self.events,
                "bytes_per_event": self.dedup.bytes / self.events,
            },
            "cold_start": {**asdict(cold), "ratio": cold.ratio, "ratio_trace_disabled": cold.ratio_trace_disabled},
            "targets": {
                key: {**asdict(t), "comparison": "<=" if t.at_most else ">=", "passed": t.passed}
                for key, t in self.targets.items()
            },
            "verification": {**asdict(self.verification), "passed": self.verification.passed},
            "capacity_units": dict(self.units),
        }
