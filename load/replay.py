"""``pipeline load replay``: archived events republished with their original pacing, or at a rate.

The events are read with :mod:`pipeline.archive.reader` (one event type or all, ``since <= timestamp
< until``), then put in event-time order (ties keep the archive's order) and **held in memory**: a
replay is for archives of demo and test size (a few million events at most). The event at time ``t``
is sent ``(t - t0) / speed`` seconds after the start (``--speed``), or the ``i``-th at ``i / rate``
(``--rate``).

Ids: kept by default, so the consumer's dedup (within its window) drops the replay and the tables do
not move; with ``new_ids`` each event gets a fresh id (``uuid5`` of the run's id and the old one:
deterministic per run), so the replay is counted again, as events the pipeline never saw. Business
keys stay: an order replayed under a new event id is still the same order, counted once (the claims
table), so order counts do not double while views, activities and system metrics do.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from pipeline.archive.reader import read_archived
from pipeline.events import Event, EventType

__all__ = ["ReplayLoad", "read_replay"]


def read_replay(
    s3: Any,
    bucket: str,
    *,
    event_type: EventType | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Event]:
    """The selected archived events in event-time order (stable)."""
    events = [event for event, _ in read_archived(s3, bucket, event_type=event_type, since=since, until=until)]
    events.sort(key=lambda e: e.timestamp)
    return events


@dataclass(frozen=True, slots=True)
class ReplayLoad:
    events: Sequence[Event]
    speed: float | None = None
    rate: float | None = None
    new_ids: bool = False
    run_id: str = ""

    def __post_init__(self) -> None:
        if (self.speed is None) == (self.rate is None):
            raise ValueError("give exactly one of speed and rate")

    @property
    def target_rate(self) -> float | None:
        """Events per second the schedule asks for (the rate, or the archive's own average at ``speed``)."""
        if self.rate is not None:
            return self.rate
        span = self.span_s
        return len(self.events) / span if span > 0 else None

    @property
    def span_s(self) -> float:
        """How long the schedule lasts."""
        if not self.events:
            return 0.0
        if self.rate is not None:
            return (len(self.events) - 1) / self.rate
        return (self.events[-1].timestamp - self.events[0].timestamp).total_seconds() / (self.speed or 1.0)

    def sent(self) -> Iterator[Event]:
        """The events as they are sent (new ids applied)."""
        namespace = uuid.UUID(self.run_id) if self.new_ids else None
        for event in self.events:
            if namespace is None:
                yield event
            else:
                yield msgspec.structs.replace(event, event_id=str(uuid.uuid5(namespace, event.event_id)))

    def schedule(self) -> Iterator[tuple[float, Event]]:
        if not self.events:
            return
        first = self.events[0].timestamp
        for index, event in enumerate(self.sent()):
            if self.rate is not None:
                yield index / self.rate, event
            else:
                yield (event.timestamp - first).total_seconds() / (self.speed or 1.0), event
