"""The careful validator: the authority on what a valid event is, and the source of precise errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from pipeline.events.types import (
    MAX_ID_LENGTH,
    SUPPORTED_SCHEMA_VERSIONS,
    Event,
    EventData,
    EventType,
    OrderData,
    OrderItem,
    ProductViewData,
    SystemMetricData,
    UserActivityData,
)
from pipeline.exceptions import EventValidationError

__all__ = ["checked_parse"]

_MAX_ID: Final = MAX_ID_LENGTH
_SUPPORTED: Final = SUPPORTED_SCHEMA_VERSIONS


def _fail(field: str, reason: str) -> EventValidationError:
    return EventValidationError(field, reason)


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _req_str(d: dict[str, Any], key: str, path: str) -> str:
    value = d.get(key)
    if type(value) is not str or not value or len(value) > _MAX_ID:
        if value is None:
            raise _fail(path, "is required")
        raise _fail(path, f"must be a non-empty string of at most {_MAX_ID} characters, got {_type_name(value)}")
    return value


def _opt_str(d: dict[str, Any], key: str, path: str) -> str | None:
    value = d.get(key)
    if value is None or type(value) is str:
        return value
    raise _fail(path, f"must be a string or absent, got {_type_name(value)}")


def _decimal(value: object, path: str) -> Decimal:
    """Money and measurements: str or int exactly, float by its shortest decimal text; finite only."""
    kind = type(value)
    try:
        if kind is str or kind is int:
            result = Decimal(value)  # type: ignore[arg-type]
        elif kind is float:
            if not math.isfinite(value):  # type: ignore[arg-type]
                raise _fail(path, "must be finite")
            result = Decimal(repr(value))
        else:
            raise _fail(path, f"must be a decimal string or number, got {_type_name(value)}")
    except InvalidOperation:
        raise _fail(path, f"is not a decimal number: {str(value)[:40]!r}") from None
    if not result.is_finite():
        raise _fail(path, "must be finite")
    return result


def _money(value: object, path: str) -> Decimal:
    result = _decimal(value, path)
    if result < 0:
        raise _fail(path, "must not be negative")
    return result


def _timestamp(value: object) -> datetime:
    if type(value) is not str:
        raise _fail("timestamp", f"must be an ISO-8601 string with offset, got {_type_name(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail("timestamp", f"is not ISO-8601: {value[:40]!r}") from None
    tz = parsed.tzinfo
    if tz is UTC:
        return parsed
    if tz is None:
        raise _fail("timestamp", "must carry a UTC offset (naive times are ambiguous)")
    return parsed.astimezone(UTC)


# --------------------------------------------------------------------------- per-type payloads


def _order(d: dict[str, Any]) -> OrderData:
    raw_items = d.get("items")
    if type(raw_items) is not list or not raw_items:
        raise _fail("data.items", "must be a non-empty list")
    items = []
    for i, item in enumerate(raw_items):
        if type(item) is not dict:
            raise _fail(f"data.items[{i}]", f"must be an object, got {_type_name(item)}")
        quantity = item.get("quantity")
        if type(quantity) is not int or quantity < 1:
            raise _fail(f"data.items[{i}].quantity", "must be a positive integer")
        items.append(
            OrderItem(
                _req_str(item, "product_id", f"data.items[{i}].product_id"),
                quantity,
                _money(item.get("price"), f"data.items[{i}].price"),
            )
        )
    return OrderData(
        _req_str(d, "order_id", "data.order_id"),
        _money(d.get("total_amount"), "data.total_amount"),
        tuple(items),
        _req_str(d, "status", "data.status"),
    )


def _product_view(d: dict[str, Any]) -> ProductViewData:
    duration = d.get("session_duration")
    if duration is not None:
        kind = type(duration)
        if (kind is not int and kind is not float) or not 0 <= duration < math.inf:
            raise _fail("data.session_duration", "must be a non-negative number of seconds")
    return ProductViewData(
        _req_str(d, "product_id", "data.product_id"),
        _opt_str(d, "referrer", "data.referrer"),
        _opt_str(d, "device_type", "data.device_type"),
        duration,
    )


def _user_activity(d: dict[str, Any]) -> UserActivityData:
    return UserActivityData(
        _req_str(d, "activity_type", "data.activity_type"),
        _opt_str(d, "page_url", "data.page_url"),
        _opt_str(d, "session_id", "data.session_id"),
    )


def _system_metric(d: dict[str, Any]) -> SystemMetricData:
    dims = d.get("dimensions")
    if dims is None:
        dims = {}
    elif type(dims) is not dict or not all(type(v) is str for v in dims.values()):
        raise _fail("data.dimensions", "must be an object of string values")
    return SystemMetricData(
        _req_str(d, "name", "data.name"),
        _decimal(d.get("value"), "data.value"),
        _req_str(d, "unit", "data.unit"),
        dims,
    )


_DATA_PARSERS: Final[dict[EventType, Callable[[dict[str, Any]], EventData]]] = {
    EventType.ORDER_EVENT: _order,
    EventType.PRODUCT_VIEW: _product_view,
    EventType.USER_ACTIVITY: _user_activity,
    EventType.SYSTEM_METRIC: _system_metric,
}
_TYPES: Final = {t.value: t for t in EventType}


def checked_parse(obj: object) -> Event:
    """Validate field by field; raise :class:`EventValidationError` naming the first bad field."""
    if type(obj) is not dict:
        raise _fail("$", f"an event must be a JSON object, got {_type_name(obj)}")
    raw_type = obj.get("event_type")
    event_type = _TYPES.get(raw_type) if type(raw_type) is str else None
    if event_type is None:
        raise _fail("event_type", f"unknown event type {str(raw_type)[:40]!r}; expected one of {sorted(_TYPES)}")
    version = obj.get("schema_version")
    if type(version) is not int or version not in _SUPPORTED:
        raise _fail("schema_version", f"unsupported schema version {version!r}; supported: {sorted(_SUPPORTED)}")
    data = obj.get("data")
    if type(data) is not dict:
        raise _fail("data", f"must be an object, got {_type_name(data)}")
    return Event(
        _req_str(obj, "event_id", "event_id"),
        event_type,
        version,
        _timestamp(obj.get("timestamp")),
        _req_str(obj, "source", "source"),
        _DATA_PARSERS[event_type](data),
        _opt_str(obj, "user_id", "user_id"),
        _opt_str(obj, "event_subtype", "event_subtype"),
    )
