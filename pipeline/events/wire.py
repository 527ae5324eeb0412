"""The canonical wire form of an event (what producers write and the archive stores)."""

from __future__ import annotations

from typing import Any

from pipeline.events.types import Event, EventData, OrderData, ProductViewData, SystemMetricData

__all__ = ["event_to_wire"]


def _data_to_wire(data: EventData) -> dict[str, Any]:
    if isinstance(data, OrderData):
        return {
            "order_id": data.order_id,
            "total_amount": str(data.total_amount),
            "items": [{"product_id": i.product_id, "quantity": i.quantity, "price": str(i.price)} for i in data.items],
            "status": data.status,
        }
    if isinstance(data, SystemMetricData):
        return {"name": data.name, "value": str(data.value), "unit": data.unit, "dimensions": data.dimensions}
    if isinstance(data, ProductViewData):
        out: dict[str, Any] = {"product_id": data.product_id}
        for key in ("referrer", "device_type", "session_duration"):
            if (value := getattr(data, key)) is not None:
                out[key] = value
        return out
    out = {"activity_type": data.activity_type}
    for key in ("page_url", "session_id"):
        if (value := getattr(data, key)) is not None:
            out[key] = value
    return out


def event_to_wire(event: Event) -> dict[str, Any]:
    """The canonical JSON-ready dict (money as strings, optional fields omitted when absent).

    ``orjson.dumps`` of it is the canonical wire bytes; the timestamp serialises as RFC 3339 UTC.
    """
    out: dict[str, Any] = {
        "event_id": event.event_id,
        "event_type": event.event_type.value,
    }
    if event.event_subtype is not None:
        out["event_subtype"] = event.event_subtype
    out["schema_version"] = event.schema_version
    out["timestamp"] = event.timestamp
    out["source"] = event.source
    if event.user_id is not None:
        out["user_id"] = event.user_id
    out["data"] = _data_to_wire(event.data)
    return out
