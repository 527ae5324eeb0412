"""The outbox relay: publishes the events the SQL store committed, then marks them published.

The repository writes each order change's ``order_event`` into ``outbox`` in the change's own
transaction, so an event exists exactly when its change committed (no dual write). The relay:

1. reads up to ``batch_size`` unpublished rows, oldest first (``id`` order; per order, changes commit
   in order because each locks the order's row);
2. publishes their events through the :class:`~pipeline.stores.publish.Publisher` and flushes;
3. marks the rows it delivered (``published_at``), in one ``BatchExecuteStatement``.

**Publish, then mark.** A crash (or any error) after 2 and before 3 leaves the rows unpublished: the
next drain publishes them again with the *same* event ids (they are stored, and deterministic), and
the consumer deduplicates by event id. Nothing is lost; nothing is counted twice downstream. Events
the publisher reports undelivered (``DeliveryError.undelivered``) stay unmarked; the drain stops there
and raises after marking what was delivered.

Run one relay at a time per database (a scheduled function, a loop in ``pipeline up``): two relays
would not lose anything either, but would publish the same rows twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from pipeline.events import Event, parse_event
from pipeline.exceptions import DeliveryError
from pipeline.stores.models import Clock, utc_now
from pipeline.stores.publish import Publisher
from pipeline.stores.sql.backend import SqlBackend

__all__ = ["DrainResult", "OutboxRelay"]

_DEFAULT_BATCH: Final = 500


@dataclass(frozen=True, slots=True)
class DrainResult:
    published: int
    batches: int


class OutboxRelay:
    """Drains ``outbox`` into ``publisher``. Not thread-safe: one drain at a time."""

    def __init__(
        self, backend: SqlBackend, publisher: Publisher, *, batch_size: int = _DEFAULT_BATCH, clock: Clock = utc_now
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._backend = backend
        self._publisher = publisher
        self._batch_size = batch_size
        self._clock = clock

    def drain_once(self) -> int:
        """Publish and mark one batch; how many events were published. Raises ``DeliveryError`` after
        marking the delivered part when the publisher could not deliver some."""
        rows = self._backend.execute_statement(
            "SELECT id, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT :limit",
            {"limit": self._batch_size},
        ).rows
        if not rows:
            return 0
        events = [_event(row["payload"]) for row in rows]
        failure: DeliveryError | None = None
        try:
            self._publisher.put_many(events)
            self._publisher.flush()
            delivered = rows
        except DeliveryError as exc:
            undelivered = {event.event_id for event in exc.undelivered}
            delivered = [row for row, event in zip(rows, events, strict=True) if event.event_id not in undelivered]
            failure = exc
        self._mark(delivered, self._clock())
        if failure is not None:
            raise failure
        return len(delivered)

    def drain(self, *, max_batches: int = 1_000) -> DrainResult:
        """Drain until nothing is unpublished (or ``max_batches``, a bound for a scheduled run)."""
        published = batches = 0
        while batches < max_batches:
            count = self.drain_once()
            if not count:
                break
            published += count
            batches += 1
        return DrainResult(published=published, batches=batches)

    def _mark(self, rows: list[dict[str, Any]], now: datetime) -> None:
        self._backend.batch_execute_statement(
            "UPDATE outbox SET published_at = :now WHERE id = :id AND published_at IS NULL",
            [{"now": now, "id": row["id"]} for row in rows],
        )


def _event(payload: Any) -> Event:
    """The stored wire dict as an :class:`Event` (validated: the outbox holds only what we wrote)."""
    return parse_event(payload if isinstance(payload, dict) else orjson.loads(payload))
