"""The plugins, registered explicitly: a literal tuple, no import-time discovery.

Every plugin is pure (no I/O, no clock; the same events and context give the same effects) and
prefix-stable (the effects of event ``i`` depend only on the context and events ``0..i``). See
:mod:`pipeline.plugins.base` for the contract and :mod:`tools.oracle` for the reference
results every test checks them against.
"""

from __future__ import annotations

from typing import Final

from pipeline.events import EventType
from pipeline.plugins.base import BatchContext, Plugin, PluginSettings, Read
from pipeline.plugins.orders import OrderMetricsPlugin
from pipeline.plugins.product_views import ProductViewsPlugin
from pipeline.plugins.system_metrics import SystemMetricsPlugin
from pipeline.plugins.user_activity import UserActivityPlugin

__all__ = [
    "REGISTRY",
    "BatchContext",
    "OrderMetricsPlugin",
    "Plugin",
    "PluginSettings",
    "ProductViewsPlugin",
    "Read",
    "SystemMetricsPlugin",
    "UserActivityPlugin",
    "plugins_for",
]

REGISTRY: Final[tuple[Plugin, ...]] = (
    OrderMetricsPlugin(),
    ProductViewsPlugin(),
    UserActivityPlugin(),
    SystemMetricsPlugin(),
)
"""Every plugin the consumer runs, in the order their effects are collected."""

_BY_TYPE: Final[dict[EventType, tuple[Plugin, ...]]] = {
    event_type: tuple(p for p in REGISTRY if event_type in p.event_types) for event_type in EventType
}


def plugins_for(event_type: EventType) -> tuple[Plugin, ...]:
    """The registered plugins that take ``event_type``, in registry order (empty if none)."""
    return _BY_TYPE.get(event_type, ())
