"""A deterministic clock for store tests: each call is one second after the previous (thread-safe)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SteppingClock:
    def __init__(self, start: datetime = datetime(2026, 11, 24, 9, 0, tzinfo=UTC), step: float = 1.0) -> None:
        self._next = start
        self._step = timedelta(seconds=step)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            now, self._next = self._next, self._next + self._step
            return now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._next = when
