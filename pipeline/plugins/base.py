"""The plugin contract: a small, typed, pure function from a batch's events to effects.

Plugins never import Lambda or boto3 types and do no I/O: whatever state they need (user segments,
the stored session of a user, which event already claimed an order status) is read by the batch
processor in one batch read per batch and handed over in :class:`BatchContext`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from pipeline.events import Event, EventType
from pipeline.metrics.effects import Effect

__all__ = ["BatchContext", "Plugin", "SessionState"]


@dataclass(frozen=True, slots=True)
class SessionState:
    """A user's stored session before this batch: the latest activity and when its session began."""

    last_activity: datetime
    session_start: datetime


@dataclass(frozen=True, slots=True)
class BatchContext:
    """What plugins may know beyond the events, read once per batch by the processor.

    ``user_segments``: segment per user from the users entity table (absent: ``default_segment``).
    ``sessions``: the stored session per user, as of before this batch's events.
    ``order_claims``: for each (order_id, status) already counted, the event_id that counted it.
    """

    user_segments: Mapping[str, str] = field(default_factory=dict)
    sessions: Mapping[str, SessionState] = field(default_factory=dict)
    order_claims: Mapping[tuple[str, str], str] = field(default_factory=dict)
    default_segment: str = "new"
    session_timeout: timedelta = timedelta(minutes=30)
    activity_ttl: timedelta = timedelta(days=30)


class Plugin(Protocol):
    """An enrichment plugin. Registered explicitly in ``pipeline.plugins.REGISTRY``.

    ``effects`` receives the batch's events of ``event_types``, deduplicated by event id, in stream
    order, and returns one list of effects per event, aligned with the input. It must be pure:
    the same events and context always give the same effects (retries rely on it).
    """

    name: str
    version: int
    event_types: frozenset[EventType]

    def effects(self, events: Sequence[Event], context: BatchContext) -> list[list[Effect]]: ...
