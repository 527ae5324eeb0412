"""Handler crashes the demo injects (``--fault-rate``): before, in the middle of and after its writes."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

__all__ = ["HandlerCrashes"]


class HandlerCrashes:
    """Handler crashes, each kind at ``rate / 3`` per invocation: before the handler runs, in the middle
    of its writes (after a random number of write calls), and after its writes, before it answers."""

    def __init__(self, rate: float, rng: random.Random) -> None:
        self.rate = rate
        self.rng = rng
        self.counts = {"crash_before": 0, "crash_mid_flush": 0, "crash_after": 0}
        self._calls_left: int | None = None

    def _roll(self) -> bool:
        return bool(self.rate) and self.rng.random() < self.rate / 3

    def wrap(self, handler: Callable[[dict[str, Any], Any], Any]) -> Callable[[dict[str, Any], Any], Any]:
        def crashing(event: dict[str, Any], context: Any) -> Any:
            if self._roll():
                self.counts["crash_before"] += 1
                raise RuntimeError("injected crash before the handler ran")
            self._calls_left = self.rng.randrange(4) if self._roll() else None
            try:
                response = handler(event, context)
            finally:
                self._calls_left = None
            if self._roll():
                self.counts["crash_after"] += 1
                raise RuntimeError("injected crash after the writes, before answering")
            return response

        return crashing

    def mid_flush(self, **_: Any) -> None:
        """A botocore ``before-call`` hook on the writes: raises once when this invocation's count runs out."""
        if self._calls_left is None:
            return
        if self._calls_left == 0:
            self._calls_left = None
            self.counts["crash_mid_flush"] += 1
            raise RuntimeError("injected crash in the middle of a flush")
        self._calls_left -= 1
