"""What change data capture publishes through: the project's producer, or anything with its contract.

:class:`producers.Producer` satisfies :class:`Publisher`: ``put_many`` buffers, ``flush`` sends and
raises :class:`~pipeline.exceptions.DeliveryError` listing every event not delivered. The stores
depend on this protocol, not on the producer's module, so the runtime core does not import the
services' package.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from pipeline.events import Event

__all__ = ["Publisher"]


class Publisher(Protocol):
    def put_many(self, events: Iterable[Event]) -> None:
        """Buffer events in order (may flush when full, raising like :meth:`flush`)."""
        ...

    def flush(self) -> None:
        """Send everything buffered; ``DeliveryError.undelivered`` lists the events not written."""
        ...
