"""The batch context: what plugins need beyond the events, read once per batch in batch reads.

- user segments from the ``users`` entity table, cached per container (segments change rarely; a
  cached segment is at most one container lifetime old) and fetched only for users not cached;
- the stored session of every user with activity in the batch (fresh every batch: the session
  fold must start from the stored state, see ``pipeline.plugins.user_activity``);
- the claims of every (order_id, status) in the batch (fresh every batch: order deduplication).

Reads go through an :class:`ItemReader` (``BatchGetItem`` with consistent reads, 100 keys a call;
or the in-memory store in tests), so no event ever causes a network call of its own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pipeline.events import Event, EventType, OrderData
from pipeline.metrics.effects import ItemKey
from pipeline.plugins.base import BatchContext, SessionState
from pipeline.plugins.orders import order_status

__all__ = ["ContextLoaderFromStore", "ItemReader", "parse_stored_time"]


class ItemReader(Protocol):
    def read(self, table: str, keys: Sequence[ItemKey]) -> Mapping[ItemKey, Mapping[str, Any]]:
        """The stored items for ``keys`` of logical ``table`` (absent keys are left out).

        Raises :class:`~pipeline.exceptions.TransientError` when the store cannot answer now.
        """
        ...


def parse_stored_time(value: str) -> datetime:
    """Stored times are fixed-width UTC strings ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return datetime.fromisoformat(value)


class ContextLoaderFromStore:
    """Builds the :class:`BatchContext` from an :class:`ItemReader`. One per container; not thread-safe."""

    def __init__(self, reader: ItemReader, *, segment_cache_size: int = 100_000) -> None:
        self._reader = reader
        self._segments: OrderedDict[str, str | None] = OrderedDict()
        self._segment_cache_size = segment_cache_size

    def load(self, events: Sequence[Event]) -> BatchContext:
        users = sorted({e.user_id for e in events if e.user_id and e.event_type is EventType.USER_ACTIVITY})
        claims = sorted(
            {
                (e.data.order_id, order_status(e.data, e.event_subtype))
                for e in events
                if e.event_type is EventType.ORDER_EVENT and isinstance(e.data, OrderData)
            }
        )
        return BatchContext(
            user_segments=self._user_segments(users),
            sessions=self._sessions(users),
            order_claims=self._claims(claims),
        )

    def _user_segments(self, users: list[str]) -> dict[str, str]:
        missing = [u for u in users if u not in self._segments]
        if missing:
            found = self._reader.read("users", [(("user_id", u),) for u in missing])
            for user in missing:
                item = found.get((("user_id", user),))
                segment = item.get("user_segment") if item else None
                self._segments[user] = segment if isinstance(segment, str) else None
            while len(self._segments) > self._segment_cache_size:
                self._segments.popitem(last=False)
        out = {}
        for user in users:
            segment = self._segments.get(user)
            if segment is not None:
                out[user] = segment
        return out

    def _sessions(self, users: list[str]) -> dict[str, SessionState]:
        if not users:
            return {}
        found = self._reader.read("user_sessions", [(("user_id", u),) for u in users])
        out = {}
        for key, item in found.items():
            last, start = item.get("last_activity"), item.get("session_start")
            if isinstance(last, str) and isinstance(start, str):
                out[str(key[0][1])] = SessionState(parse_stored_time(last), parse_stored_time(start))
        return out

    def _claims(self, claims: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        if not claims:
            return {}
        found = self._reader.read("order_claims", [(("order_id", o), ("status", s)) for o, s in claims])
        out = {}
        for key, item in found.items():
            event_id = item.get("event_id")
            if isinstance(event_id, str):
                out[(str(key[0][1]), str(key[1][1]))] = event_id
        return out
