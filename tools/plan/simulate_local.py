"""A simulation of the local live runtime (``pipeline up``), as it runs, not as Lambda would.

:mod:`tools.plan.simulate` models AWS: an event source mapping per shard, invocations in parallel. The
local runtime (:mod:`tools.local.live`, :class:`tools.local.runtime.LocalEventSource`) is one thread
that serves the shards in turn, and this module replays its loop on a simulated clock:

- a **round** visits every shard in order: one ``GetRecords`` (``get_records_s``, plus
  ``per_stream_record_s`` per record the stream holds, ``stream_records_at_start`` plus those read since,
  plus ``per_record_read_s`` for each record it brings: the call's share and the archive's, which reads
  the same records; times a log-normal factor for ``poll_jitter``), at most ``poll_limit`` records;
- with a batching window, a shard whose poll brought records and holds fewer than ``batch_size`` keeps
  them for the next round (the runtime's rule: the window is a "poll again while records come", not a
  deadline); otherwise everything it holds is invoked at once, in batches of ``batch_size``, one after
  the other, each taking ``invocation_overhead_s`` plus ``per_event_s`` per event (times a log-normal
  factor of mean 1 when ``jitter`` > 0) plus ``per_record_invoked_s`` per record;
- after every round, the end-of-round work (``round_end_s``: change data capture, metrics, the
  archive's flush, the status file); a round in which no shard had records is followed by the idle
  wait (``idle_wait_s``, 0.5 s in the runtime);
- the load (:class:`LocalLoad`) is ``pipeline load synthetic``'s: events evenly spaced at ``rate`` for
  ``seconds``, sent by the producer's linger loop (``linger_s``, then a ``PutRecords`` call of
  ``put_latency_s`` at whose end they arrive), one record per ``events_per_record`` events, dealt
  to the shards in turn. The runtime is caught at a random point of its idle wait when the load starts
  (``seed``), or its first poll is at ``start_s``.

Measured as the load run measures it: a record's lag runs from its events' ``put()`` to the end of the
invocation that counts them (the load's probe sees the table row a little earlier, during the
invocation's writes, so the simulated lag is high by at most a fraction of one invocation);
throughput is events over the time from the first ``put()`` to the end of the last invocation. The
runtime's own figures feed it: :mod:`tools.cli.compare_live` fits every time above from a run's status
file and consumer log. Deterministic for a given ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from random import Random

from load.lag import percentile

__all__ = ["LocalLoad", "LocalResult", "LocalRuntimeModel", "simulate_local"]


@dataclass(frozen=True, slots=True)
class LocalRuntimeModel:
    """The runtime's settings and its service times (seconds); see the module docstring."""

    shards: int
    invocation_overhead_s: float
    per_event_s: float
    get_records_s: float
    per_record_read_s: float = 0.0
    per_stream_record_s: float = 0.0
    """Added to every GetRecords call per record the stream holds (the emulator's calls slow as it fills)."""
    stream_records_at_start: int = 0
    per_record_invoked_s: float = 0.0
    round_end_s: float = 0.0
    idle_wait_s: float = 0.5
    batch_size: int = 1000
    batching_window_s: float = 1.0
    poll_limit: int = 10_000
    jitter: float = 0.0
    """Sigma of the log-normal factor on each invocation's duration (mean 1); 0: every one as fitted."""
    poll_jitter: float = 0.0
    """The same for each GetRecords call: whether a poll comes back before the producer's next send decides
    whether a short batch is held, so the spread of the polls' times matters, not only their mean."""
    round_end_jitter: float = 0.0
    """The same for each round's end."""


@dataclass(frozen=True, slots=True)
class LocalLoad:
    """A ``pipeline load synthetic`` run: ``rate`` events/s for ``seconds``, through the producer."""

    rate: float
    seconds: float
    events_per_record: int = 1
    linger_s: float = 0.2
    put_latency_s: float = 0.0


@dataclass(frozen=True, slots=True)
class LocalResult:
    events: int
    invocations: int
    rounds: int
    idle_rounds: int
    events_per_s: float
    """Events over the time from the first ``put()`` to the end of the last invocation."""
    last_done_s: float
    lag_p50_s: float
    lag_p95_s: float
    lag_mean_s: float
    iterator_age_mean_s: float
    """Age of each batch's newest record when its invocation starts (Lambda's ``IteratorAge``), averaged."""
    busy_fraction: float
    """Share of the time to the last invocation spent in invocations."""


def _flush_times(puts: list[float], linger_s: float, call_s: float) -> list[float]:
    """When the producer's linger loop takes each record (``puts`` in order), as
    :meth:`producers.Producer._linger_loop` does: a ``put()`` wakes it; it clears the wake-up, waits
    ``linger_s``, takes everything buffered and sends it in a call of ``call_s``; a ``put()`` after the
    clear wakes it again as soon as that call ends."""
    sent: list[float] = []
    flush = clear = -math.inf
    rewoken = False
    for put in puts:
        while put > flush + 1e-9:
            done = flush + call_s
            # Woken during the send (or the linger before it): the next linger starts when the send ends.
            # Asleep: this put wakes it (after an empty flush, if it was woken for nothing).
            clear = done if put <= done or (rewoken and put <= done + linger_s) else put
            flush, rewoken = clear + linger_s, False
        sent.append(flush)
        rewoken = rewoken or put > clear + 1e-9
    return sent


class _Stream:
    """The records of every shard: put and arrival times, in shard order."""

    def __init__(self, load: LocalLoad, shards: int) -> None:
        per_record = load.events_per_record
        events = max(1, round(load.rate * load.seconds))
        records = math.ceil(events / per_record)
        self.events_of = [min(per_record, events - i * per_record) for i in range(records)]
        self.put: list[list[float]] = [[] for _ in range(shards)]
        self.arrival: list[list[float]] = [[] for _ in range(shards)]
        self.weight: list[list[int]] = [[] for _ in range(shards)]
        puts = [(index * per_record + self.events_of[index] - 1) / load.rate for index in range(records)]
        sent = _flush_times(puts, load.linger_s, load.put_latency_s)
        for index in range(records):
            put = puts[index]
            shard = index % shards
            self.put[shard].append(put)
            self.arrival[shard].append(sent[index] + load.put_latency_s)
            self.weight[shard].append(self.events_of[index])
        self.total = [len(a) for a in self.arrival]

    def arrived_by(self, shard: int, t: float, after: int) -> int:
        """Records of ``shard`` arrived at or before ``t``, counting from index ``after``."""
        arrivals, n = self.arrival[shard], after
        while n < len(arrivals) and arrivals[n] <= t + 1e-9:
            n += 1
        return n


class _Run:
    def __init__(self, model: LocalRuntimeModel, load: LocalLoad, seed: int, start_s: float | None) -> None:
        self.m = model
        self.stream = _Stream(load, model.shards)
        self.rng = Random(seed)  # noqa: S311 - a simulation's noise, not a secret
        self.read = [0] * model.shards
        self.done = [0] * model.shards
        self.lags: list[float] = []
        self.ages: list[float] = []
        self.invocations = self.rounds = self.idle_rounds = self.total_read = 0
        self.busy = self.last_done = 0.0
        # By default the load starts somewhere in an idle wait: the first poll is up to one wait before it.
        self.start = -self.rng.uniform(0.0, model.idle_wait_s) if start_s is None else start_s

    def noisy(self, seconds: float, sigma: float) -> float:
        """``seconds`` times a log-normal factor of mean 1 and log-sigma ``sigma`` (none for 0)."""
        return seconds * math.exp(self.rng.gauss(-sigma * sigma / 2, sigma)) if sigma > 0 else seconds

    def invoke(self, t: float, shard: int) -> float:
        """Everything ``shard`` holds, in batches; the time when the last one ends."""
        m, stream = self.m, self.stream
        while self.done[shard] < self.read[shard]:
            first = self.done[shard]
            last = min(first + m.batch_size, self.read[shard])
            events = sum(stream.weight[shard][first:last])
            duration = m.invocation_overhead_s + m.per_event_s * events + m.per_record_invoked_s * (last - first)
            duration = self.noisy(duration, m.jitter)
            self.ages.append(t - stream.arrival[shard][last - 1])
            t += duration
            self.busy += duration
            self.invocations += 1
            for index in range(first, last):
                self.lags.extend([t - stream.put[shard][index]] * stream.weight[shard][index])
            self.done[shard] = last
            self.last_done = t
        return t

    def go(self) -> None:
        m, stream = self.m, self.stream
        t = self.start
        window = m.batching_window_s > 0
        while True:
            got = 0
            for shard in range(m.shards):
                polled_at = t
                new = min(stream.arrived_by(shard, polled_at, self.read[shard]) - self.read[shard], m.poll_limit)
                poll = m.get_records_s + m.per_stream_record_s * (m.stream_records_at_start + self.total_read)
                t += self.noisy(poll + new * m.per_record_read_s, m.poll_jitter)
                self.read[shard] += new
                self.total_read += new
                got += new
                held = self.read[shard] - self.done[shard]
                if held and held < m.batch_size and new and window:
                    continue  # gather more, as the batching window does
                t = self.invoke(t, shard)
            t += self.noisy(m.round_end_s, m.round_end_jitter)
            self.rounds += 1
            if got:
                continue
            self.idle_rounds += 1
            if self.read == stream.total:
                return
            t += m.idle_wait_s


def simulate_local(
    model: LocalRuntimeModel, load: LocalLoad, *, seed: int = 1, start_s: float | None = None
) -> LocalResult:
    """Run ``load`` through the local runtime's loop until every record is counted; see the module docstring.

    ``start_s``: the runtime's first poll, in seconds from the first ``put()`` (default: random, within
    one idle wait before it). Raises :class:`ValueError` for a model or load that cannot run."""
    if model.shards < 1 or model.batch_size < 1 or model.poll_limit < 1 or load.rate <= 0 or load.seconds <= 0:
        raise ValueError("shards, batch size, poll limit, rate and seconds must be positive")
    run = _Run(model, load, seed, start_s)
    run.go()
    lags = run.lags
    end = run.last_done
    return LocalResult(
        events=len(lags),
        invocations=run.invocations,
        rounds=run.rounds,
        idle_rounds=run.idle_rounds,
        events_per_s=len(lags) / end if end > 0 else math.nan,
        last_done_s=end,
        lag_p50_s=percentile(lags, 50),
        lag_p95_s=percentile(lags, 95),
        lag_mean_s=sum(lags) / len(lags),
        iterator_age_mean_s=sum(run.ages) / len(run.ages),
        busy_fraction=run.busy / end if end > 0 else math.nan,
    )
