"""Product views: one daily item per product holding the day's count and its hourly histogram.

Table ``product_metrics``, key ``(product_id, metric_date)`` with ``metric_date`` ``YYYY-MM-DD`` of
the event time in UTC. Each view adds ``view_count`` 1 and ``hour_HH`` 1 (``hour_00`` to
``hour_23``, the UTC hour) to that one item, and offers its stamp as ``max`` of ``last_viewed``.

Guarantees: one item per product and day (one write per item per batch after coalescing); the hourly
counters always sum to ``view_count``; ``last_viewed`` never moves backwards, so late views count in
their own day and hour without rewinding it. Pure and prefix-stable: event ``i``'s effects depend on
nothing but event ``i``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipeline.events import Event, EventType, ProductViewData
from pipeline.metrics.effects import Add, Effect, Extreme
from pipeline.plugins.base import BatchContext, Read
from pipeline.plugins.timefmt import day_of, hour_of_day, stamp

__all__ = ["ProductViewsPlugin"]


class ProductViewsPlugin:
    """See the module docstring. Stateless: one instance serves every batch."""

    name: str = "product_views"
    version: int = 1
    event_types: frozenset[EventType] = frozenset({EventType.PRODUCT_VIEW})

    def reads(self, events: Sequence[Event]) -> Iterable[Read]:
        """Nothing: a view's effects depend on the view alone."""
        return ()

    def effects(self, events: Sequence[Event], context: BatchContext) -> list[list[Effect]]:
        """One effect list per event: the counters and ``last_viewed``; ``[]`` for other types."""
        out: list[list[Effect]] = []
        for event in events:
            data = event.data
            if not isinstance(data, ProductViewData):
                out.append([])
                continue
            when = stamp(event.timestamp)
            key = (("product_id", data.product_id), ("metric_date", day_of(when)))
            out.append(
                [
                    Add("product_metrics", key, {"view_count": 1, f"hour_{hour_of_day(when)}": 1}),
                    Extreme("product_metrics", key, "last_viewed", when, "max"),
                ]
            )
        return out
