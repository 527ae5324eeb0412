"""End-to-end lag: from the moment an event is handed to the producer to its effect in a metrics table.

A sample of ``user_activity`` events (at most ``per_second`` a second) is probed: each such event
writes exactly one ``user_activities`` row keyed ``(user_id, "<UTC stamp>#<event_id>")``, so its
effect is visible, exactly, when that item exists; no other event can make it appear early (the
alternative, a product's ``view_count`` reaching a threshold, is shared by every view of the
product). A background thread reads the pending keys with ``BatchGetItem`` (100 a call) every
``poll_s`` seconds; lag is "first read that sees the item" minus "put", so it is over-estimated by at
most one poll period plus one call. Lags are kept in the order they were seen, so a lag that grows
from the first quarter of the run to the last says the consumer did not keep up.

Not for events whose id the consumer already counted (a replay that keeps ids): their rows exist
before they are sent, and nothing new becomes visible. Thread-safe: ``offer`` may be called from the
sending thread while the probe thread polls.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.events import Event, UserActivityEvent
from pipeline.plugins.timefmt import stamp

__all__ = ["LagProbe", "LagReport", "percentile"]

_BATCH = 100


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0-100) of ``values``; 0.0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass(slots=True)
class LagReport:
    samples: int = 0
    seen: int = 0
    missed: int = 0
    lags_s: list[float] = field(default_factory=list)
    probe_errors: int = 0

    def saturated(self) -> bool:
        """True when lag grew over the run (the last quarter's median over twice the first's, and over 5 s):
        the consumer did not keep up with the rate, whatever the sender reached."""
        first, last = self._quarters()
        return percentile(last, 50) > max(2 * percentile(first, 50), 5.0)

    def _quarters(self) -> tuple[list[float], list[float]]:
        quarter = max(len(self.lags_s) // 4, 1)
        return self.lags_s[:quarter], self.lags_s[-quarter:]

    def as_dict(self) -> dict[str, Any]:
        lags = self.lags_s
        first, last = self._quarters()
        return {
            "samples": self.samples,
            "seen": self.seen,
            "missed": self.missed,
            "probe_errors": self.probe_errors,
            "p50_ms": round(percentile(lags, 50) * 1000),
            "p95_ms": round(percentile(lags, 95) * 1000),
            "p99_ms": round(percentile(lags, 99) * 1000),
            "max_ms": round(max(lags, default=0.0) * 1000),
            "first_quarter_p50_ms": round(percentile(first, 50) * 1000),
            "last_quarter_p50_ms": round(percentile(last, 50) * 1000),
            "consumer_saturated": self.saturated(),
        }


class LagProbe:
    """Sample events with :meth:`offer`, then :meth:`close`; see the module docstring."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        per_second: float = 20.0,
        poll_s: float = 0.05,
        timeout_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._gap = 1.0 / per_second if per_second > 0 else float("inf")
        self._poll_s = poll_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._last_sample = float("-inf")
        self._pending: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.report = LagReport()
        self._thread = threading.Thread(target=self._loop, name="lag-probe", daemon=True)
        self._thread.start()

    def offer(self, event: Event, put_at: float) -> None:
        """Consider ``event``, handed to the producer at ``put_at`` (``clock()`` time), for a sample."""
        if not isinstance(event, UserActivityEvent) or not event.user_id or put_at - self._last_sample < self._gap:
            return
        self._last_sample = put_at
        with self._lock:
            self._pending[(event.user_id, f"{stamp(event.timestamp)}#{event.event_id}")] = put_at
            self.report.samples += 1

    def snapshot(self) -> dict[str, Any]:
        """The figures so far (for live progress)."""
        with self._lock:
            return self.report.as_dict()

    def close(self) -> LagReport:
        """Wait until every sample is seen or timed out, stop the thread; the final report."""
        deadline = self._clock() + self._timeout_s + 1.0
        while self._clock() < deadline:
            with self._lock:
                if not self._pending:
                    break
            time.sleep(self._poll_s)
        self._stop.set()
        self._thread.join()
        with self._lock:
            self.report.missed += len(self._pending)
            self._pending.clear()
        return self.report

    def _loop(self) -> None:
        while not self._stop.wait(self._poll_s):
            with self._lock:
                keys = list(self._pending)[:_BATCH]
            if keys:
                self._probe(keys)

    def _probe(self, keys: list[tuple[str, str]]) -> None:
        request = {
            self._table: {
                "Keys": [{"user_id": {"S": user}, "timestamp": {"S": when}} for user, when in keys],
                "ProjectionExpression": "user_id, #t",
                "ExpressionAttributeNames": {"#t": "timestamp"},
            }
        }
        try:
            response = self._dynamodb.batch_get_item(RequestItems=request)
        except (BotoCoreError, ClientError):
            with self._lock:
                self.report.probe_errors += 1
            return
        now = self._clock()
        found = {(i["user_id"]["S"], i["timestamp"]["S"]) for i in response.get("Responses", {}).get(self._table, [])}
        with self._lock:
            for key in keys:
                put_at = self._pending.get(key)
                if put_at is None:
                    continue
                if key in found:
                    del self._pending[key]
                    self.report.seen += 1
                    self.report.lags_s.append(now - put_at)
                elif now - put_at > self._timeout_s:
                    del self._pending[key]
                    self.report.missed += 1
