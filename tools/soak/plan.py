"""What a soak sends, in which order: the reference workload, with resends and late events mixed in.

:func:`make_plan` takes ``n`` events of the reference workload (:func:`tools.generate.generate_events`,
which spans hours of event time) and, with ``rate``:

- **late events**: ``round(rate * n)`` events, drawn at random, are held back and sent after every
  other event, so they arrive far out of event-time order (up to the workload's whole span late);
- **resends**: ``round(rate * n)`` events, drawn at random, are sent a second time, with the same
  ``event_id``, at least :data:`RESEND_DISTANCE` sends after the first copy (so, sent in chunks of that
  size with a flush between them, the first copy has been delivered before its resend goes out); the
  originals are drawn among all but the last :data:`RESEND_DISTANCE` sends.

Deterministic for a seed. The oracle's input is :attr:`SoakPlan.first_sends` (the events in the order
their first copy is sent), which is the order the consumer sees per key.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from pipeline.events import Event
from tools.generate import generate_events

__all__ = ["RESEND_DISTANCE", "SoakPlan", "make_plan"]

RESEND_DISTANCE: Final = 500


@dataclass(frozen=True, slots=True)
class SoakPlan:
    sends: list[Event]
    """Every send, in order: each event once, plus the resends, with the late events at the end."""
    late: int
    resent: int

    @property
    def first_sends(self) -> list[Event]:
        seen: set[str] = set()
        out = []
        for event in self.sends:
            if event.event_id not in seen:
                seen.add(event.event_id)
                out.append(event)
        return out


def make_plan(n: int, rate: float, seed: int) -> SoakPlan:
    """The sends of a soak of ``n`` events at fault rate ``rate``; see the module docstring."""
    events = list(generate_events(n, seed))
    rng = random.Random(seed)  # noqa: S311 - a test workload, not secrets
    k = round(rate * n)
    late_indices = set(rng.sample(range(n), k)) if k else set()
    on_time = [e for i, e in enumerate(events) if i not in late_indices]
    ordered = on_time + [events[i] for i in sorted(late_indices)]
    room = max(len(ordered) - RESEND_DISTANCE, 0)  # a resend needs RESEND_DISTANCE sends after its original
    resend_from = sorted(rng.sample(range(room), min(k, room))) if k else []
    slots: dict[int, list[Event]] = {}
    for i in resend_from:
        at = min(i + RESEND_DISTANCE + rng.randrange(max(n // 4, 1)), len(ordered))
        slots.setdefault(at, []).append(ordered[i])
    sends: list[Event] = []
    for position in range(len(ordered) + 1):
        sends += slots.get(position, [])
        if position < len(ordered):
            sends.append(ordered[position])
    return SoakPlan(sends=sends, late=len(late_indices), resent=len(resend_from))
