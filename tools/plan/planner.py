"""Size a deployment for a rate of events from the measured figures and AWS's limits.

The consumer model, per shard (``ParallelizationFactor`` 1, which the exactly-once watermarks need):
the event source mapping invokes the function with what arrived since the last invocation, once the
batching window ``W`` has passed or the batch is full, and never while the previous invocation of the
shard runs. An invocation of ``n`` events lasts ``o + n * s`` (``o`` a fixed overhead per
invocation, ``s`` the measured wall time per event). In the steady state the cycle ``T`` between
invocations of a shard solves ``T = max(min(W, T_full), o + rho * T)`` with ``rho = lambda * s``
(``lambda`` the shard's events per second; ``T_full`` the time to fill a batch), so
``T = max(min(W, T_full), o / (1 - rho))``. A record waits at most one cycle before its invocation
starts: the expected **iterator age** (of a batch's oldest record, when its invocation starts) is
``T``, and the mean lag to the tables ``T / 2 + o + n * s``. When records come further apart than
``T`` (large batched records at a low rate per shard), each record is an invocation of its own,
``W`` after its arrival or when the previous invocation ends: the age is ``W + max(0, d - 1/r)``.
A shard is stable only while it can take its arrivals at full batches (``rho < 1`` and
``lambda < B / (o + B * s)``); the planner adds shards until each runs at most at ``utilization`` of that.

All figures are per second unless named otherwise; money is in :mod:`tools.plan.cost`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from tools.plan.inputs import EVENT_TYPES, Figures, PlanInputError, UnitPoint
from tools.plan.limits import (
    LAMBDA_MAX_BATCH_RECORDS,
    LAMBDA_PAYLOAD_BYTES,
    PARTITION_WCU_PER_S,
    SHARD_EGRESS_BYTES_PER_S,
    SHARD_INGEST_BYTES_PER_S,
    SHARD_INGEST_RECORDS_PER_S,
)

__all__ = ["ConsumerPlan", "HotKey", "Plan", "PlanRequest", "consumer_cycle", "plan", "shards_needed"]

_INVOCATION_JSON_OVERHEAD: Final = 300
"""Bytes of JSON around each record's base64 data in a Kinesis event (ids, ARN, timestamps)."""
_BASE_ITEM_BYTES: Final = 300
"""A counter item's size without its watermark (keys and a few counters)."""


@dataclass(frozen=True, slots=True)
class PlanRequest:
    rate: float
    """Events per second, steady."""
    record_format: str = "gzip-batch"
    event_bytes: float | None = None
    """JSON bytes of an average event; None: the reference workload's."""
    mix: Mapping[str, float] | None = None
    """Share of each event type (sums to 1); None: the reference workload's."""
    batching_window_s: float = 1.0
    utilization: float = 0.8
    """Every per-shard and per-partition limit is planned at this fraction."""
    readers: int = 3
    """Consumers sharing each shard's 2 MB/s of reads: the Lambda mapping, Firehose, Flink."""
    invocation_overhead_s: float = 0.03
    memory_mb: int = 512
    shards: int | None = None
    """Use this many shards (an existing stream) instead of sizing; the plan may then not keep up."""
    batch_size: int | None = None
    """Cap the event source mapping's BatchSize (records) below what 6 MB allows."""
    per_event_us: float | None = None
    """The consumer's wall time per event; None: the figures' (measured on the emulator)."""
    linger_s: float = 0.2
    """The producer's ``linger_seconds`` (its default): a batched record holds at most a shard's events of
    that long."""

    def __post_init__(self) -> None:
        if not self.rate > 0 or not math.isfinite(self.rate):
            raise PlanInputError(f"the rate must be a positive number of events per second, not {self.rate}")
        if not 0 < self.utilization <= 1:
            raise PlanInputError(f"utilization must be in (0, 1], not {self.utilization}")
        if self.event_bytes is not None and not self.event_bytes > 0:
            raise PlanInputError(f"event bytes must be positive, not {self.event_bytes}")
        if self.per_event_us is not None and not self.per_event_us > 0:
            raise PlanInputError(f"the time per event must be positive, not {self.per_event_us}")
        if (self.shards is not None and self.shards < 1) or (self.batch_size is not None and self.batch_size < 1):
            raise PlanInputError("shards and batch size must be at least 1")
        if not 0 <= self.batching_window_s <= 300:
            raise PlanInputError(f"the batching window is 0 to 300 s, not {self.batching_window_s}")
        if self.mix is not None:
            unknown = set(self.mix) - set(EVENT_TYPES)
            if (
                unknown
                or any(v < 0 for v in self.mix.values())
                or not math.isclose(sum(self.mix.values()), 1.0, abs_tol=1e-3)
            ):
                raise PlanInputError(
                    f"the mix is shares of {', '.join(EVENT_TYPES)} summing to 1; got {dict(self.mix)}"
                )


@dataclass(frozen=True, slots=True)
class ConsumerPlan:
    """One shard's steady state under the consumer model of the module docstring."""

    cycle_s: float
    events_per_invocation: float
    duration_s: float
    iterator_age_s: float
    mean_lag_s: float
    utilization: float


@dataclass(frozen=True, slots=True)
class HotKey:
    table: str
    item_writes_per_s: float
    write_units_per_s: float
    design: str
    fix: str


@dataclass(frozen=True, slots=True)
class Plan:
    request: PlanRequest
    events_per_record: float
    bytes_per_event: float
    record_bytes: float
    records_per_s: float
    bytes_per_s: float
    shards_by: Mapping[str, int]
    shards: int
    batch_size: int
    consumer: ConsumerPlan
    invocations_per_s: float
    write_units_per_event: float
    read_units_per_event: float
    write_units_per_event_one_shard: float
    seed_write_units_per_event: float
    seed_read_units_per_event: float
    seed_shards: int
    seed_consumer: ConsumerPlan
    hot_keys: tuple[HotKey, ...] = field(default=())
    mix: Mapping[str, float] = field(default_factory=dict)

    @property
    def write_units_per_s(self) -> float:
        return self.request.rate * self.write_units_per_event

    @property
    def read_units_per_s(self) -> float:
        return self.request.rate * self.read_units_per_event


def consumer_cycle(
    events_per_s: float,
    events_per_record: float,
    batch_records: int,
    window_s: float,
    overhead_s: float,
    per_event_s: float,
) -> ConsumerPlan | None:
    """One shard's steady state, or ``None`` when it cannot keep up (see the module docstring)."""
    rho = events_per_s * per_event_s
    batch_events = batch_records * events_per_record
    if rho >= 1 or events_per_s >= batch_events / (overhead_s + batch_events * per_event_s):
        return None
    fill = batch_events / events_per_s
    cycle = max(min(window_s, fill), overhead_s / (1 - rho))
    records_per_s = events_per_s / events_per_record
    if records_per_s * cycle < 1:
        # Records come further apart than a cycle: each is its own invocation, after the window (or
        # after the previous invocation, if that ends later).
        duration = overhead_s + events_per_record * per_event_s
        age = window_s + max(0.0, duration - 1 / records_per_s)
        return ConsumerPlan(1 / records_per_s, events_per_record, duration, age, age + duration, rho)
    n = min(events_per_s * cycle, batch_events)
    duration = overhead_s + n * per_event_s
    return ConsumerPlan(cycle, n, duration, cycle, cycle / 2 + duration, rho)


def shards_needed(bytes_per_s: float, records_per_s: float, readers: int, utilization: float) -> dict[str, int]:
    """Shards each Kinesis limit asks for at ``utilization``: ingest bytes, ingest records, egress."""
    return {
        "ingest bytes (1 MiB/s)": math.ceil(bytes_per_s / (SHARD_INGEST_BYTES_PER_S * utilization)),
        "ingest records (1,000/s)": math.ceil(records_per_s / (SHARD_INGEST_RECORDS_PER_S * utilization)),
        f"egress ({readers} readers, 2 MiB/s)": math.ceil(
            readers * bytes_per_s / (SHARD_EGRESS_BYTES_PER_S * utilization)
        ),
    }


def _batch_records(record_bytes: float) -> int:
    per_record = 4 * math.ceil(record_bytes / 3) + _INVOCATION_JSON_OVERHEAD
    return max(1, min(LAMBDA_MAX_BATCH_RECORDS, int(LAMBDA_PAYLOAD_BYTES // per_record)))


def _size(request: PlanRequest, figures: Figures, fmt: str) -> tuple[float, float]:
    """``(events per record, bytes per event)`` for ``fmt``, scaled to ``request.event_bytes``."""
    try:
        measured = figures.formats[fmt]
    except KeyError:
        raise PlanInputError(f"no figures for format {fmt!r}; known: {', '.join(sorted(figures.formats))}") from None
    scale = 1.0 if request.event_bytes is None else request.event_bytes / figures.formats["json"]["bytes_per_event"]
    per_event = measured["bytes_per_event"] * scale
    per_record = measured["events_per_record"]
    if per_record > 1:  # batched formats fill records up to their size, not to an event count
        per_record = max(1.0, min(per_record, measured["bytes_per_record"] / per_event))
    return per_record, per_event


def _consumer_shards(
    request: PlanRequest, base: int, per_record: float, batch: int, per_event_s: float
) -> tuple[int, ConsumerPlan]:
    shards = base
    while True:
        lam = request.rate / shards
        state = consumer_cycle(
            lam, per_record, batch, request.batching_window_s, request.invocation_overhead_s, per_event_s
        )
        if state is not None and state.utilization <= request.utilization:
            return shards, state
        capacity = request.utilization / per_event_s  # events/s a shard may take at the target
        shards = max(shards + 1, math.ceil(request.rate / capacity))


def _many_shards_factor(figures: Figures, shards: int) -> float:
    """Write units per event at ``shards`` shards over one shard's, interpolated on log(shards)."""
    points = sorted(figures.many_shards.items())
    one = points[0][1]
    if shards <= points[0][0]:
        return 1.0
    for (s0, w0), (s1, w1) in itertools.pairwise(points):
        if shards <= s1:
            t = (math.log(shards) - math.log(s0)) / (math.log(s1) - math.log(s0))
            return (w0 + t * (w1 - w0)) / one
    return points[-1][1] / one


def _hot_indexes(request: PlanRequest, point: UnitPoint, mix: Mapping[str, float]) -> tuple[HotKey, ...]:
    """Index partitions above ``utilization`` of a partition's write units.

    The product index (``by-view-day``) is keyed by the day: every product partial's write that
    changes its views also writes that one index partition, so it takes the rate times the index's
    measured units per event (one unit per write: its entries are small). DynamoDB throttles the
    table's writes when an index cannot keep up. ``MetricKeySplit`` K splits the index's day K ways
    as it splits the partition keys (:func:`pipeline.metrics.partials.index_attributes`).
    """
    limit = PARTITION_WCU_PER_S * request.utilization
    keys = []
    for index in sorted(point.index_write_per_type):
        units = request.rate * point.index_write_units(index, mix)
        if units > limit:
            parts = math.ceil(units / limit)
            keys.append(
                HotKey(
                    index,
                    units,
                    units,
                    "project",
                    f"the index's partition of the day (throttles the table's writes when over); set "
                    f"MetricKeySplit={parts}: the index's day over {parts} suffixes (shard ordinal mod {parts}), "
                    f"read by {parts} Queries",
                )
            )
    return tuple(keys)


def _hot_keys(request: PlanRequest, figures: Figures, shards: int, cycle_s: float) -> tuple[HotKey, ...]:
    """Partition keys above ``utilization`` of a partition's write units, and the split that fixes each.

    Project (per-shard partial items, :mod:`pipeline.metrics.partials`): a hot logical item is one
    partial per shard, each holding one watermark (about one write unit a write, whatever the shard
    count), but all partials share the partition key (``hourly_orders``, a product id), so that key
    takes one write per shard invocation carrying the item's events: ``min(events, shards / cycle)``
    writes a second. Seed style: one write (about one unit) per event on one item.
    """
    keys = []
    limit = PARTITION_WCU_PER_S * request.utilization
    units = math.ceil((_BASE_ITEM_BYTES + figures.watermark_bytes) / 1024)
    for table, share in sorted(figures.hottest_share.items()):
        events = request.rate * share
        writes = min(events, shards / cycle_s)  # at most one write per shard invocation (coalesced)
        if writes * units > limit:
            parts = math.ceil(writes * units / limit)
            keys.append(
                HotKey(
                    table,
                    writes,
                    writes * units,
                    "project",
                    f"{writes:,.0f} partial writes/s ({units} WU each, one per shard invocation) on one partition "
                    f"key; set MetricKeySplit={parts}: the key over {parts} suffixes (shard ordinal mod {parts}), "
                    f"read by {parts} Queries",
                )
            )
        if events > limit:  # the seed style writes once per event, about 1 unit each
            keys.append(
                HotKey(
                    table,
                    events,
                    events,
                    "seed style",
                    f"split the key over {math.ceil(events / limit)} suffixes and sum them on read",
                )
            )
    return tuple(keys)


def plan(request: PlanRequest, figures: Figures) -> Plan:
    """The plan for ``request``; raises :class:`PlanInputError` for inputs the figures cannot serve."""
    mix = dict(request.mix or figures.mix)
    per_record, per_event = _size(request, figures, request.record_format)
    record_bytes = per_record * per_event
    records_per_s, bytes_per_s = request.rate / per_record, request.rate * per_event
    by = shards_needed(bytes_per_s, records_per_s, request.readers, request.utilization)
    per_event_s = (request.per_event_us or figures.project_wall_us) * 1e-6
    shards = request.shards
    if shards is None:
        batch = min(_batch_records(record_bytes), request.batch_size or LAMBDA_MAX_BATCH_RECORDS)
        shards, _ = _consumer_shards(request, max(by.values()), per_record, batch, per_event_s)
        if shards > max(by.values()):
            by["consumer time (measured)"] = shards
    else:
        by["given"] = shards
    if per_record > 1:
        # A batching producer sends each shard's events every linger_s at the latest: at low rates per
        # shard its records are smaller than full ones.
        per_record = max(1.0, min(per_record, request.rate / shards * request.linger_s))
        record_bytes, records_per_s = per_record * per_event, request.rate / per_record
    batch = min(_batch_records(record_bytes), request.batch_size or LAMBDA_MAX_BATCH_RECORDS)
    fixed = consumer_cycle(
        request.rate / shards, per_record, batch, request.batching_window_s, request.invocation_overhead_s, per_event_s
    )
    if fixed is None:
        raise PlanInputError(
            f"{shards} shards cannot keep up with {request.rate:g} events/s at the measured time per event"
        )
    state = fixed
    point = figures.project_units_at(state.events_per_invocation)
    one_shard = point.write_units(mix)
    # The seed style: one JSON record per event, its own (blocking) time per event.
    seed_record, seed_event = _size(request, figures, "json")
    seed_by = shards_needed(request.rate * seed_event, request.rate / seed_record, request.readers, request.utilization)
    seed_shards, seed_state = _consumer_shards(
        request,
        max(seed_by.values()),
        seed_record,
        _batch_records(seed_record * seed_event),
        figures.seed_wall_us * 1e-6,
    )
    return Plan(
        request,
        per_record,
        per_event,
        record_bytes,
        records_per_s,
        bytes_per_s,
        by,
        shards,
        batch,
        state,
        shards / state.cycle_s,
        one_shard * _many_shards_factor(figures, shards),
        point.read_units(mix),
        one_shard,
        figures.seed.write_units(mix),
        figures.seed.read_units(mix),
        seed_shards,
        seed_state,
        _hot_keys(request, figures, shards, state.cycle_s) + _hot_indexes(request, point, mix),
        mix,
    )
