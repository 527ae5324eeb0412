"""What one end-to-end benchmark measured: each run's figures, the verification, the ``--json`` shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline.codecs import RecordFormat
from tools.local.emulator import MINISTACK_VERSION

__all__ = ["EndToEndBenchResult", "EndToEndFigures", "Verification"]


@dataclass(frozen=True, slots=True)
class EndToEndFigures:
    """One consumer's run: its events from the producer's start to the last batch done, and what it cost."""

    stack: str
    events: int
    kinesis_records: int
    """Records the producer put (a ``gzip-batch`` or KPL record carries many events)."""
    wall_s: float
    dynamodb_requests: int
    put_records_calls: int
    invocations: int
    function_errors: int
    partial_failures: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    def per_event(self, count: int) -> float:
        return count / self.events

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "events_per_s": self.events_per_s,
            "dynamodb_requests_per_event": self.per_event(self.dynamodb_requests),
            "put_records_calls_per_event": self.per_event(self.put_records_calls),
            "invocations_per_event": self.per_event(self.invocations),
        }


@dataclass(frozen=True, slots=True)
class Verification:
    """The project's tables, fulfilment queue, bad rows and on-failure queue against the oracle."""

    item_counts: dict[str, int]
    fulfilment_messages: int
    bad_rows: int
    discarded_batches: int
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class EndToEndBenchResult:
    """Everything one :func:`run` measured. ``to_json`` is the ``--json`` output (stable keys)."""

    events: int
    seed_events: int
    seed: int
    record_format: RecordFormat
    python: str
    endpoint: str
    embedded: bool
    project: EndToEndFigures
    seed_style: EndToEndFigures
    verification: Verification

    def ratios(self) -> dict[str, float]:
        """Project over seed style: of events/s, and of each count per event."""
        p, s = self.project, self.seed_style
        return {
            "events_per_s": p.events_per_s / s.events_per_s,
            "dynamodb_requests_per_event": _ratio(p.per_event(p.dynamodb_requests), s.per_event(s.dynamodb_requests)),
            "put_records_calls_per_event": _ratio(p.per_event(p.put_records_calls), s.per_event(s.put_records_calls)),
            "invocations_per_event": _ratio(p.per_event(p.invocations), s.per_event(s.invocations)),
        }

    def to_json(self) -> dict[str, Any]:
        v = self.verification
        return {
            "benchmark": "e2e",
            "events": self.events,
            "seed_events": self.seed_events,
            "seed": self.seed,
            "record_format": self.record_format.value,
            "python": self.python,
            "emulator": f"ministack {MINISTACK_VERSION}",
            "endpoint": self.endpoint,
            "embedded_emulator": self.embedded,
            "project": self.project.to_json(),
            "seed_style": self.seed_style.to_json(),
            "project_to_seed_style": self.ratios(),
            "verification": {**asdict(v), "problems": list(v.problems), "passed": v.passed},
        }


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")
