"""The batch context: what plugins declare they read (:meth:`Plugin.reads`), read once per batch.

The loader knows no plugin's keys. It asks every plugin for the items its events need, reads the
fresh ones in one batch read per table and serves the cacheable ones (entity data such as user
segments) from a per-container LRU cache, reading only the keys it has not seen. A cached item is at
most one container lifetime old; a missing item is cached as missing too.

Reads go through an :class:`ItemReader` (``BatchGetItem`` with consistent reads, 100 keys a call; or
the in-memory store in tests), so no event ever causes a network call of its own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pipeline.events import Event
from pipeline.metrics.effects import ItemKey
from pipeline.plugins.base import BatchContext, Plugin, PluginSettings, StoredItem
from pipeline.retry import NO_DEADLINE, Deadline

__all__ = ["ContextLoaderFromStore", "ItemReader"]


class ItemReader(Protocol):
    def read(
        self, table: str, keys: Sequence[ItemKey], deadline: Deadline = NO_DEADLINE
    ) -> Mapping[ItemKey, Mapping[str, Any]]:
        """The stored items for ``keys`` of logical ``table`` (absent keys are left out).

        Raises :class:`~pipeline.exceptions.TransientError` when the store cannot answer now.
        """
        ...


class ContextLoaderFromStore:
    """Builds the :class:`BatchContext` for ``plugins`` from an :class:`ItemReader`.

    One per container; not thread-safe. ``cache_size`` bounds the cached (cacheable) items.
    """

    def __init__(
        self,
        reader: ItemReader,
        plugins: Sequence[Plugin],
        settings: PluginSettings | None = None,
        *,
        cache_size: int = 100_000,
    ) -> None:
        self._reader = reader
        self._plugins = tuple(plugins)
        self._settings = settings or PluginSettings()
        self._cache: OrderedDict[tuple[str, ItemKey], StoredItem | None] = OrderedDict()
        self._cache_size = cache_size

    def load(self, events: Sequence[Event], deadline: Deadline = NO_DEADLINE) -> BatchContext:
        """Read what the plugins need for ``events``. Raises TransientError when the store cannot answer."""
        fresh: dict[str, dict[ItemKey, None]] = {}
        cached: dict[str, dict[ItemKey, None]] = {}
        for plugin in self._plugins:
            mine = [e for e in events if e.event_type in plugin.event_types]
            if not mine:
                continue
            for read in plugin.reads(mine):
                (cached if read.cacheable else fresh).setdefault(read.table, {})[read.key] = None
        items: dict[tuple[str, ItemKey], StoredItem] = {}
        for table, keys in fresh.items():
            for key, item in self._reader.read(table, list(keys), deadline).items():
                items[(table, key)] = item
        for table, keys in cached.items():
            items.update(self._cached(table, list(keys), deadline))
        return BatchContext(items, self._settings)

    def _cached(self, table: str, keys: list[ItemKey], deadline: Deadline) -> dict[tuple[str, ItemKey], StoredItem]:
        out: dict[tuple[str, ItemKey], StoredItem] = {}
        missing: list[ItemKey] = []
        for key in keys:
            ref = (table, key)
            if ref not in self._cache:
                missing.append(key)
                continue
            self._cache.move_to_end(ref)
            item = self._cache[ref]
            if item is not None:
                out[ref] = item
        if missing:
            found = self._reader.read(table, missing, deadline)
            for key in missing:
                item = found.get(key)
                self._cache[(table, key)] = item
                if item is not None:
                    out[(table, key)] = item
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out
