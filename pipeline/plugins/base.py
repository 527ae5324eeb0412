"""The plugin contract: a small, typed, pure function from a batch's events to effects.

Plugins never import Lambda or boto3 types and do no I/O. Whatever stored state they need (a user's
segment, a user's stored session, which event already claimed an order) they *declare* with
:meth:`Plugin.reads`; the batch processor reads every declared item of the batch in one batch read and
hands them over in :class:`BatchContext`. Nothing in the processor or the context loader knows any
plugin's keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from pipeline.events import Event, EventType
from pipeline.events.limits import MAX_ACTIVITY_TTL
from pipeline.metrics.effects import Effect, ItemKey

__all__ = ["BatchContext", "Plugin", "PluginSettings", "Read"]

StoredItem = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Read:
    """One stored item a plugin needs for a batch. ``cacheable``: it changes rarely (entity data such
    as a user's segment) and may come from the container's cache, at most one container lifetime old;
    otherwise it is read fresh for every batch (state the pipeline itself writes)."""

    table: str
    key: ItemKey
    cacheable: bool = False


@dataclass(frozen=True, slots=True)
class PluginSettings:
    """Deployment settings plugins read (from the template's parameters)."""

    default_segment: str = "new"
    session_timeout: timedelta = timedelta(minutes=30)
    activity_ttl: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        if not timedelta(0) < self.activity_ttl <= MAX_ACTIVITY_TTL:
            raise ValueError(f"activity_ttl must be positive and at most {MAX_ACTIVITY_TTL.days} days")
        if self.session_timeout <= timedelta(0):
            raise ValueError("session_timeout must be positive")


@dataclass(frozen=True, slots=True)
class BatchContext:
    """What plugins may know beyond the events, read once per batch by the processor.

    ``items`` holds every item the plugins declared with :meth:`Plugin.reads` that exists, keyed by
    ``(table, key)``; a declared item that does not exist is absent.
    """

    items: Mapping[tuple[str, ItemKey], StoredItem] = field(default_factory=dict)
    settings: PluginSettings = field(default_factory=PluginSettings)

    def item(self, table: str, key: ItemKey) -> StoredItem | None:
        return self.items.get((table, key))


class Plugin(Protocol):
    """An enrichment plugin. Registered explicitly in ``pipeline.plugins.REGISTRY``.

    ``reads`` names the stored items the plugin needs for these events. ``effects`` receives the
    batch's events of ``event_types``, deduplicated by event id, in stream order, and returns one list
    of effects per event, aligned with the input. Both must be pure: the same events and context
    always give the same effects (retries rely on it), and the effects of event ``i`` depend only on
    the context and events ``0..i`` (prefix-stable: a batch cut anywhere gets the effects it would get
    alone). A plugin that raises, or whose effects break a store limit, makes its event a bad row.
    """

    name: str
    version: int
    event_types: frozenset[EventType]

    def reads(self, events: Sequence[Event]) -> Iterable[Read]: ...

    def effects(self, events: Sequence[Event], context: BatchContext) -> list[list[Effect]]: ...
