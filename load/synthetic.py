"""``pipeline load synthetic``: the reference workload (:mod:`tools.generate`) at a target rate.

``rate * seconds`` events are generated with the reference workload's shape, dated over the run
itself (the spec starts at the run's start, whole seconds, and lasts ``seconds``), so the tables fill
today's buckets as a live shop would; the event at index ``i`` is handed to the producer at
``i / rate`` seconds. The same ``(events, seed, start, seconds)``, all in the report, regenerate the
same events: a test or an oracle can recompute what the tables must hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from pipeline.events import Event
from tools.generate import WorkloadSpec, generate_events

__all__ = ["SyntheticLoad"]


@dataclass(frozen=True, slots=True)
class SyntheticLoad:
    rate: float
    seconds: float
    seed: int
    start: datetime

    @classmethod
    def starting_now(cls, rate: float, seconds: float, seed: int) -> SyntheticLoad:
        return cls(rate, seconds, seed, datetime.now(UTC).replace(microsecond=0))

    @property
    def events(self) -> int:
        return max(1, round(self.rate * self.seconds))

    def spec(self) -> WorkloadSpec:
        return replace(WorkloadSpec(), start=self.start, duration=timedelta(seconds=self.seconds))

    def generate(self) -> Iterator[Event]:
        """The events of this run, in order (what :meth:`schedule` sends)."""
        return generate_events(self.events, self.seed, self.spec())

    def schedule(self) -> Iterator[tuple[float, Event]]:
        for index, event in enumerate(self.generate()):
            yield index / self.rate, event

    def as_dict(self) -> dict[str, object]:
        return {
            "events": self.events,
            "seed": self.seed,
            "start": self.start.isoformat(),
            "seconds": self.seconds,
            "rate": self.rate,
        }
