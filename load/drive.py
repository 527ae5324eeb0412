"""Sending a paced stream of events through the project's :class:`~producers.Producer`, measured.

:func:`drive` takes ``(offset_s, event)`` pairs (offsets from the start, non-decreasing) and hands each
event to the producer no earlier than its offset; it never sends ahead of time and never skips an
event, so a sender that falls behind sends as fast as it can and the report says where the time went
(producing the events, or the producer's ``PutRecords`` calls) and what Kinesis said (throttled calls,
entries resent). Events go to the :class:`~load.lag.LagProbe` as they are put. Progress is one line on
stderr, redrawn at most every ``progress_s`` seconds, when stderr is a terminal (or ``progress`` is
forced). Events the producer could not deliver are counted, not raised: a load test reports them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from load.lag import LagProbe
from pipeline.events import Event
from pipeline.exceptions import DeliveryError
from producers import Producer

__all__ = ["DriveReport", "drive"]

_AHEAD_S = 0.005  # sleep only when at least this far ahead of schedule


@dataclass(slots=True)
class DriveReport:
    target_rate: float | None
    events: int = 0
    undelivered: int = 0
    schedule_s: float = 0.0
    """The offset of the last event: how long the run takes when the schedule is kept."""
    elapsed_s: float = 0.0
    """From the first put to the last event delivered (the producer closed)."""
    source_s: float = 0.0
    put_s: float = 0.0
    slept_s: float = 0.0
    producer: dict[str, int] = field(default_factory=dict)
    lag: dict[str, Any] = field(default_factory=dict)

    @property
    def achieved_rate(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s else 0.0

    def limited_by(self) -> str:
        """Why the run was slower than its schedule, in words; empty when it kept it (within 5%)."""
        if self.elapsed_s <= max(self.schedule_s, 0.0) * 1.05 + 0.5:
            return ""
        throttled = self.producer.get("throttled_calls", 0)
        if throttled:
            return f"Kinesis throttled {throttled} PutRecords calls (entries resent: {self.producer.get('retries', 0)})"
        if self.source_s > self.put_s:
            return f"producing the events: {self.source_s:.1f} s of {self.elapsed_s:.1f} s went to reading/generating"
        return (
            f"the producer's PutRecords calls: {self.put_s:.1f} s of {self.elapsed_s:.1f} s blocked in put() "
            f"({self.producer.get('put_calls', 0)} calls; the endpoint and this machine's CPU set the pace)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "undelivered": self.undelivered,
            "target_events_per_s": self.target_rate,
            "achieved_events_per_s": round(self.achieved_rate, 1),
            "reached_target": not self.limited_by(),
            "limited_by": self.limited_by() or None,
            "schedule_s": round(self.schedule_s, 3),
            "elapsed_s": round(self.elapsed_s, 3),
            "time_s": {"source": round(self.source_s, 3), "put": round(self.put_s, 3), "slept": round(self.slept_s, 3)},
            "producer": self.producer,
            "lag": self.lag,
        }


def drive(
    schedule: Iterable[tuple[float, Event]],
    producer: Producer,
    probe: LagProbe | None,
    *,
    target_rate: float | None,
    label: str = "load",
    progress: bool | None = None,
    progress_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
) -> DriveReport:
    """Send ``schedule`` through ``producer`` (closed here), sampling lag with ``probe``; see the module docstring."""
    report = DriveReport(target_rate=target_rate)
    show = sys.stderr.isatty() if progress is None else progress
    drawn = 0.0
    started = clock()
    items = iter(schedule)
    while True:
        before = clock()
        try:
            offset, event = next(items)
        except StopIteration:
            break
        now = clock()
        report.source_s += now - before
        wait = started + offset - now
        if wait > _AHEAD_S:
            time.sleep(wait)
            report.slept_s += wait
        put_at = clock()
        try:
            producer.put(event)
        except DeliveryError as exc:  # an earlier background flush ran out of retries
            report.undelivered += len(exc.undelivered)
        report.put_s += clock() - put_at
        report.events += 1
        report.schedule_s = offset
        if probe is not None:
            probe.offer(event, put_at)
        if show and put_at - drawn >= progress_s:
            drawn = put_at
            _draw(label, report, put_at - started, probe, producer.stats.throttled_calls)
    closing = clock()
    try:
        producer.close()
    except DeliveryError as exc:
        report.undelivered += len(exc.undelivered)
    report.put_s += clock() - closing
    report.elapsed_s = clock() - started
    report.producer = producer.stats.as_dict()
    if probe is not None:
        report.lag = probe.close().as_dict()
    if show:
        _draw(label, report, report.elapsed_s, None, producer.stats.throttled_calls)
        sys.stderr.write("\n")
    return report


def _draw(label: str, report: DriveReport, elapsed: float, probe: LagProbe | None, throttled: int) -> None:
    rate = report.events / elapsed if elapsed > 0 else 0.0
    target = f" (target {report.target_rate:,.0f})" if report.target_rate else ""
    lag = ""
    if probe is not None:
        s = probe.snapshot()
        lag = f"  lag p50 {s['p50_ms']} ms p95 {s['p95_ms']} ms ({s['seen']}/{s['samples']} samples)"
    line = f"{label} {report.events:,} events {rate:,.0f}/s{target}{lag}"
    if throttled:
        line += f"  throttled {throttled}"
    sys.stderr.write("\r" + line[:160].ljust(100))
    sys.stderr.flush()
