"""One retry policy for every AWS caller, and the deadline that bounds a batch's retries.

:class:`RetryPolicy` is exponential backoff with full jitter (AWS's recommended scheme): before retry
``n`` (from 1) a caller waits a uniform random time in ``[0, min(max_delay, base_delay * 2 ** (n - 1))]``.
The producer, the metric writer's flush engine, the dedup store and the S3 object writer all use it,
built from :class:`~pipeline.settings.Settings`; botocore's own retries are off on their clients
(``max_attempts=1``), so retries never stack.

A :class:`Deadline` is when every call of a batch must have ended: the Lambda handler derives it from
the invocation's remaining time less a safety margin. Every AWS call asks :meth:`Deadline.allows`
before it starts (a call that could not end by then is not made), and every retry loop asks
:meth:`RetryPolicy.wait`, which also refuses a wait whose call could not end by then.
A batch that gives up reports its first unpersisted position (Lambda retries it later) instead of
being killed by the function timeout in the middle of a write.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["NO_DEADLINE", "SAFETY_MARGIN_SECONDS", "Deadline", "RetryPolicy", "invocation_deadline"]


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point on ``clock`` (monotonic seconds) after which no retry starts. Immutable."""

    at: float
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        return self.at - self.clock()

    def allows(self, call_seconds: float) -> bool:
        """Whether a call that may take ``call_seconds`` can start now and still end by the deadline.

        Every AWS call of a batch asks this first, its first attempt included: a round of calls run
        several at a time may take longer than one call, so checking once per round is not enough.
        """
        return self.remaining() >= call_seconds


NO_DEADLINE = Deadline(float("inf"))
"""For callers without one (tools, tests): retries are bounded by the policy's attempts only."""

SAFETY_MARGIN_SECONDS = 2.0
"""Kept free at the end of a Lambda invocation, after the last call: logs, metrics, the response."""


def invocation_deadline(remaining_seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
    """A Lambda invocation's deadline, when every call must have ended: its remaining time less the margin."""
    return Deadline.after(remaining_seconds - SAFETY_MARGIN_SECONDS, clock)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` tries in all (the first included), full-jitter exponential backoff between them."""

    attempts: int = 4
    base_delay: float = 0.05
    max_delay: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy makes at least one attempt")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ValueError("delays must satisfy 0 <= base_delay <= max_delay")

    def cap(self, retry: int) -> float:
        """The longest wait before retry ``retry`` (1 for the first retry)."""
        return min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))

    def worst_case_wait(self) -> float:
        """The longest total wait of one operation's retries."""
        return sum(self.cap(retry) for retry in range(1, self.attempts))

    def wait(
        self,
        retry: int,
        *,
        deadline: Deadline = NO_DEADLINE,
        call_seconds: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> bool:
        """Before retry ``retry`` (from 1): sleep the jittered delay and return True, or return False,
        without sleeping, when the attempts are spent or the wait plus one call of ``call_seconds``
        would pass ``deadline``."""
        if retry >= self.attempts:
            return False
        cap = self.cap(retry)
        if deadline.remaining() < cap + call_seconds:
            return False
        sleep((rng or random).uniform(0, cap))
        return True
