"""Where the live runtime's time goes: the figures ``timing`` of its status file.

:class:`RuntimeTiming` holds the sums; :class:`TimedKinesis` wraps the runtime's Kinesis client to time
its ``GetRecords`` calls. The runtime (:mod:`tools.local.live`) times its invocations, the archive's share
of the records and the end of each round itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["RuntimeTiming", "TimedKinesis"]


@dataclass(slots=True)
class RuntimeTiming:
    """Where the runtime's time goes, summed since it started (``timing`` in the status file): the
    GetRecords calls (those that came back empty apart), the archive's share of the records read, the
    invocations (the deployed handler, with its EMF forwarding), the end-of-round work (change data
    capture, metrics, the archive's due flush, the status file) and the rounds after which it waited
    ``idle_wait_s`` (no shard had records). ``tools.cli.compare_live`` fits its simulation to these.

    Sums only grow; a reader takes the difference of two snapshots. Not thread-safe (the runtime's loop)."""

    idle_wait_s: float
    rounds: int = 0
    idle_rounds: int = 0
    get_records_calls: int = 0
    get_records_s: float = 0.0
    empty_get_records_calls: int = 0
    empty_get_records_s: float = 0.0
    records_read: int = 0
    archive_s: float = 0.0
    invocations: int = 0
    invocation_s: float = 0.0
    round_end_s: float = 0.0
    read_since_round: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "idle_rounds": self.idle_rounds,
            "idle_wait_s": self.idle_wait_s,
            "get_records_calls": self.get_records_calls,
            "get_records_s": round(self.get_records_s, 4),
            "empty_get_records_calls": self.empty_get_records_calls,
            "empty_get_records_s": round(self.empty_get_records_s, 4),
            "records_read": self.records_read,
            "archive_s": round(self.archive_s, 4),
            "invocations": self.invocations,
            "invocation_s": round(self.invocation_s, 4),
            "round_end_s": round(self.round_end_s, 4),
            "monotonic_s": round(time.monotonic(), 4),
        }


class TimedKinesis:
    """The Kinesis client, with its ``GetRecords`` calls timed into a :class:`RuntimeTiming`; all else forwarded."""

    def __init__(self, inner: Any, timing: RuntimeTiming) -> None:
        self._inner = inner
        self._timing = timing

    def get_records(self, **kwargs: Any) -> Any:
        started = time.monotonic()
        page = self._inner.get_records(**kwargs)
        spent = time.monotonic() - started
        timing = self._timing
        timing.get_records_calls += 1
        timing.get_records_s += spent
        if not page.get("Records"):
            timing.empty_get_records_calls += 1
            timing.empty_get_records_s += spent
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
