"""System metrics: per-minute count, sum, max and min of each metric series.

Table ``system_metrics``, key ``(metric_key, minute)``: ``minute`` is ``YYYY-MM-DDTHH:MM`` of the
event time in UTC; ``metric_key`` is the series key of the event model
(:meth:`~pipeline.events.SystemMetricData.series_key`: ``name|k1=v1,k2=v2``, dimensions sorted, the
separators escaped so that two series never share an item; validation keeps it within a DynamoDB
key). Each event adds ``count`` 1 and ``sum`` value, and offers its value as ``max`` and as ``min``.
Values are :class:`~decimal.Decimal`, exactly as received.

Pure and prefix-stable: event ``i``'s effects depend on nothing but event ``i``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipeline.events import Event, EventType, SystemMetricData
from pipeline.metrics.effects import Add, Effect, Extreme
from pipeline.plugins.base import BatchContext, Read
from pipeline.plugins.timefmt import minute_of, stamp

__all__ = ["SystemMetricsPlugin"]


class SystemMetricsPlugin:
    """See the module docstring. Stateless: one instance serves every batch."""

    name: str = "system_metrics"
    version: int = 1
    event_types: frozenset[EventType] = frozenset({EventType.SYSTEM_METRIC})

    def reads(self, events: Sequence[Event]) -> Iterable[Read]:
        """Nothing: a metric's effects depend on the metric alone."""
        return ()

    def effects(self, events: Sequence[Event], context: BatchContext) -> list[list[Effect]]:
        """One effect list per event: count, sum, max and min; ``[]`` for other types."""
        out: list[list[Effect]] = []
        for event in events:
            data = event.data
            if not isinstance(data, SystemMetricData):
                out.append([])
                continue
            value = data.value
            minute = minute_of(stamp(event.timestamp))
            key = (("metric_key", data.series_key()), ("minute", minute))
            out.append(
                [
                    Add("system_metrics", key, {"count": 1, "sum": value}),
                    Extreme("system_metrics", key, "max", value, "max"),
                    Extreme("system_metrics", key, "min", value, "min"),
                ]
            )
        return out
