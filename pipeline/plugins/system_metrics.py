"""System metrics: per-minute count, sum, max and min of each metric series.

Table ``system_metrics``, key ``(metric_key, minute)``: ``minute`` is ``YYYY-MM-DDTHH:MM`` of the
event time in UTC; ``metric_key`` is ``name|k1=v1,k2=v2`` with the dimensions sorted by key (``name|``
without dimensions). Each event adds ``count`` 1 and ``sum`` value, and offers its value as ``max``
and as ``min``. Values are :class:`~decimal.Decimal`, exactly as received.

Guarantees: :func:`metric_key` is injective. In names, dimension keys and values, the characters
``%``, ``|``, ``,`` and ``=`` are percent-escaped (``%25``, ``%7C``, ``%2C``, ``%3D``), so two
different series never share an item; ordinary names read unchanged. Pure and prefix-stable: event
``i``'s effects depend on nothing but event ``i``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from pipeline.events import Event, EventType, SystemMetricData
from pipeline.metrics.effects import Add, Effect, Extreme
from pipeline.plugins.base import BatchContext
from pipeline.plugins.timefmt import minute_of, stamp

__all__ = ["SystemMetricsPlugin", "metric_key"]

_ESCAPES: Final = str.maketrans({"%": "%25", "|": "%7C", ",": "%2C", "=": "%3D"})


def metric_key(name: str, dimensions: Mapping[str, str]) -> str:
    """``name|k1=v1,k2=v2``: dimensions sorted by key, separators escaped (see the module docstring)."""
    dims = ",".join(f"{k.translate(_ESCAPES)}={v.translate(_ESCAPES)}" for k, v in sorted(dimensions.items()))
    return f"{name.translate(_ESCAPES)}|{dims}"


class SystemMetricsPlugin:
    """See the module docstring. Stateless: one instance serves every batch."""

    name: str = "system_metrics"
    version: int = 1
    event_types: frozenset[EventType] = frozenset({EventType.SYSTEM_METRIC})

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
            key = (("metric_key", metric_key(data.name, data.dimensions)), ("minute", minute))
            out.append(
                [
                    Add("system_metrics", key, {"count": 1, "sum": value}),
                    Extreme("system_metrics", key, "max", value, "max"),
                    Extreme("system_metrics", key, "min", value, "min"),
                ]
            )
        return out
