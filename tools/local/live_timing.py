"""Where the live runtime's time goes: the figures ``timing`` of its status file.

:class:`RuntimeTiming` holds the sums; :class:`TimedKinesis` wraps the runtime's Kinesis client to time
its ``GetRecords`` calls. The runtime (:mod:`tools.local.live`) times its invocations, the archive's share
of the records and the end of each round itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RuntimeTiming", "TimedKinesis"]

_SUMS = ("n", "k", "nn", "kk", "nk", "ny", "ky", "yy")


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
    round_end_ss: float = 0.0
    """Sum of the squares of the rounds' end times (their spread)."""
    read_since_round: int = 0
    stream_records: int = 0
    """Records all GetRecords calls returned so far: the stream's size, for a runtime that read it from
    TRIM_HORIZON (the emulator's GetRecords takes longer the more records a shard holds)."""
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_SUMS, 0.0))
    """Sums over the GetRecords calls of ``n`` (the stream's size before the call), ``k`` (records it
    returned) and ``y`` (its seconds), and of their products: what a least-squares fit of
    ``y = a + c n + b k`` over the calls between two snapshots, and the spread around it, need."""

    def add_call(self, records: int, seconds: float) -> None:
        """One GetRecords call that returned ``records`` in ``seconds``."""
        n, k, y = float(self.stream_records), float(records), seconds
        sums = self.sums
        for key, value in (("n", n), ("k", k), ("nn", n * n), ("kk", k * k), ("nk", n * k)):
            sums[key] += value
        sums["ny"] += n * y
        sums["ky"] += k * y
        sums["yy"] += y * y
        self.get_records_calls += 1
        self.get_records_s += y
        if not records:
            self.empty_get_records_calls += 1
            self.empty_get_records_s += y
        self.stream_records += records

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
            "round_end_ss": round(self.round_end_ss, 6),
            "monotonic_s": round(time.monotonic(), 4),
            "stream_records": self.stream_records,
            "get_records_sums": dict(self.sums),
        }


class TimedKinesis:
    """The Kinesis client, with its ``GetRecords`` calls timed into a :class:`RuntimeTiming`; all else forwarded."""

    def __init__(self, inner: Any, timing: RuntimeTiming) -> None:
        self._inner = inner
        self._timing = timing

    def get_records(self, **kwargs: Any) -> Any:
        started = time.monotonic()
        page = self._inner.get_records(**kwargs)
        self._timing.add_call(len(page.get("Records") or ()), time.monotonic() - started)
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
