"""A discrete-event simulation of the consumer side, to check the planner's iterator age and throughput.

What is simulated, per shard: records arriving at the shard's rate (evenly spaced, a random phase per
shard); the event source mapping, which invokes the function when the batching window of the oldest
waiting record has passed or a full batch (``BatchSize`` records, within 6 MB) is waiting, and never
while that shard's previous invocation runs (``ParallelizationFactor`` 1); the account's Lambda
concurrency, above which an invocation is throttled and retried after ``throttle_backoff_s``; and each
invocation's duration, the measured overhead plus time per event, times a log-normal noise
(``jitter``), plus DynamoDB throttles: each write call of the invocation (one per 25 item writes) is
throttled with probability ``dynamodb_throttle`` and retried after full-jitter backoff (the consumer's
:mod:`pipeline.retry` policy: base 50 ms, doubling, at most 10 attempts).

Measured after ``warmup_s``: the iterator age (age of a batch's oldest record when its invocation
starts, averaged over invocations, as the planner predicts it), the mean lag from a record's arrival
to the end of its invocation, and the events per second done. Deterministic for a given ``seed``.

This is what AWS does. The local live runtime (``pipeline up``) is not Lambda: one thread serves the
shards in turn, so its lag is simulated by :mod:`tools.plan.simulate_local` (fitted to a run by
``pipeline compare-live``), not by this model with a concurrency of 1.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from random import Random

from tools.plan.planner import Plan

__all__ = ["SimulationResult", "SimulationSettings", "simulate"]


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    duration_s: float = 300.0
    warmup_s: float = 60.0
    jitter: float = 0.2
    """Sigma of the log-normal factor on each invocation's duration (mean 1)."""
    dynamodb_throttle: float = 0.01
    concurrency_limit: int = 1000
    throttle_backoff_s: float = 1.0
    seed: int = 1
    drain: bool = False
    """Stop arrivals at ``duration_s`` and run until every record is done, as a load run of that length
    does (``pipeline load synthetic``); throughput is then events over the time to the last one."""


@dataclass(frozen=True, slots=True)
class SimulationResult:
    shards: int
    invocations: int
    throttled_invocations: int
    dynamodb_retries: int
    iterator_age_s: float
    mean_lag_s: float
    median_lag_s: float
    """Per record, approximated by each invocation's mean lag weighted by its records."""
    events_per_s: float
    max_concurrency: int


class _Shard:
    __slots__ = ("busy", "last", "next_index", "phase", "rate")

    def __init__(self, rate: float, phase: float) -> None:
        self.rate, self.phase = rate, phase
        self.next_index = 0
        self.busy = False
        self.last: int | None = None
        """With a drain, the number of records that ever arrive."""

    def arrival(self, index: int) -> float:
        return self.phase + index / self.rate

    def arrived_by(self, t: float) -> int:
        """Records with an arrival at or before ``t`` (indexes ``0 .. n-1``)."""
        if self.last is not None:
            return min(self.last, self._arrived_by(t))
        return self._arrived_by(t)

    def _arrived_by(self, t: float) -> int:
        # The tolerance makes a record count as arrived at its own arrival time despite rounding.
        return 0 if t < self.phase else math.floor((t - self.phase) * self.rate + 1e-9) + 1


def _median(lags: list[tuple[float, int]]) -> float:
    total = sum(n for _, n in lags)
    seen = 0
    for lag, n in sorted(lags):
        seen += n
        if 2 * seen >= total:
            return lag
    return math.nan


def _backoff(rng: Random, attempt: int) -> float:
    return rng.uniform(0.0, min(0.05 * 2**attempt, 5.0))


class _Run:
    """One simulation's state; :meth:`step` handles one event of the queue."""

    def __init__(self, plan: Plan, settings: SimulationSettings) -> None:
        self.s = settings
        self.rng = Random(settings.seed)  # noqa: S311 - a simulation's noise, not a secret
        self.plan = plan
        self.per_record = plan.events_per_record
        c = plan.consumer
        self.overhead = plan.request.invocation_overhead_s
        self.per_event_s = (c.duration_s - self.overhead) / c.events_per_invocation if c.events_per_invocation else 0.0
        self.window, self.batch = plan.request.batching_window_s, plan.batch_size
        rate = plan.records_per_s / plan.shards
        self.shards = [_Shard(rate, self.rng.uniform(0, 1 / rate)) for _ in range(plan.shards)]
        self.queue: list[tuple[float, int, int, int]] = []  # (time, kind 0 poll / 1 done, shard, records)
        for number, shard in enumerate(self.shards):
            heapq.heappush(self.queue, (shard.arrival(0), 0, number, 0))
        self.running = self.max_running = self.invocations = self.throttled = self.retries = 0
        self.ages: list[float] = []
        self.lag_sum = self.done_events = self.end = 0.0
        self.lag_records = 0
        self.lags: list[tuple[float, int]] = []
        if settings.drain:
            for shard in self.shards:
                shard.last = shard._arrived_by(settings.duration_s)

    def done(self, t: float, number: int, records: int) -> None:
        shard = self.shards[number]
        self.running -= 1
        shard.busy = False
        if t >= self.s.warmup_s:
            first = shard.next_index - records
            mean_arrival = (shard.arrival(first) + shard.arrival(shard.next_index - 1)) / 2
            self.lag_sum += (t - mean_arrival) * records
            self.lag_records += records
            self.lags.append((t - mean_arrival, records))
            self.done_events += records * self.per_record
        self.end = max(self.end, t)
        heapq.heappush(self.queue, (t, 0, number, 0))

    def poll(self, t: float, number: int) -> None:
        shard = self.shards[number]
        if shard.busy:
            return
        waiting = shard.arrived_by(t) - shard.next_index
        if waiting <= 0 and shard.last is not None and shard.next_index >= shard.last:
            return  # drained: nothing more arrives
        if waiting <= 0:
            heapq.heappush(self.queue, (shard.arrival(shard.next_index), 0, number, 0))
            return
        oldest = shard.arrival(shard.next_index)
        if waiting < self.batch and t < oldest + self.window:
            full_at = shard.arrival(shard.next_index + self.batch - 1)
            heapq.heappush(self.queue, (min(oldest + self.window, full_at), 0, number, 0))
            return
        if self.running >= self.s.concurrency_limit:
            self.throttled += 1
            heapq.heappush(self.queue, (t + self.s.throttle_backoff_s, 0, number, 0))
            return
        take = min(waiting, self.batch)
        if t >= self.s.warmup_s:
            self.ages.append(t - oldest)
        self.invocations += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        shard.busy = True
        shard.next_index += take
        heapq.heappush(self.queue, (t + self.duration(take * self.per_record), 1, number, take))

    def duration(self, events: float) -> float:
        sigma = self.s.jitter
        duration = (self.overhead + events * self.per_event_s) * math.exp(self.rng.gauss(-sigma * sigma / 2, sigma))
        for _ in range(math.ceil(events * self.plan.write_units_per_event_one_shard / 25)):
            attempt = 0
            while attempt < 9 and self.rng.random() < self.s.dynamodb_throttle:
                duration += _backoff(self.rng, attempt) + 0.01
                attempt += 1
                self.retries += 1
        return duration


def simulate(plan: Plan, settings: SimulationSettings | None = None) -> SimulationResult:
    """Run the plan's consumer side for ``settings.duration_s`` simulated seconds."""
    run = _Run(plan, settings or SimulationSettings())
    while run.queue:
        t, kind, number, records = heapq.heappop(run.queue)
        if t > run.s.duration_s and not run.s.drain:
            break
        if kind == 1:
            run.done(t, number, records)
        else:
            run.poll(t, number)
    measured = (run.end if run.s.drain else run.s.duration_s) - run.s.warmup_s
    return SimulationResult(
        plan.shards,
        run.invocations,
        run.throttled,
        run.retries,
        sum(run.ages) / len(run.ages) if run.ages else math.nan,
        run.lag_sum / run.lag_records if run.lag_records else math.nan,
        _median(run.lags),
        run.done_events / measured,
        run.max_running,
    )
