"""The optimistic fast path of ``parse_event``: one pass of cheap checks for the common, valid case.

Contract (checked by a property test against :func:`~pipeline.events.validate.checked_parse`): for
every input, ``fast_parse`` returns either ``None`` (unsure: let the careful validator decide and
explain) or exactly the event the careful validator would return. It never raises. It handles the
canonical shapes producers write (UTC timestamps, money as strings, integer durations); anything
else, valid or not, takes the careful path.

Written flat on purpose: each helper call costs about as much as a field check, and this runs once
per event on the consumer's hot path.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from pipeline.events.types import (
    MAX_ID_LENGTH,
    Event,
    EventData,
    EventType,
    OrderData,
    OrderItem,
    ProductViewData,
    UserActivityData,
)

__all__ = ["fast_parse"]

_fromiso: Final = datetime.fromisoformat
_str: Final = str
_int: Final = int
_dict: Final = dict
_list: Final = list
_ZERO: Final = Decimal(0)
_INF: Final = Decimal("Infinity")
_N: Final = MAX_ID_LENGTH


def _product_view(d: dict[str, Any]) -> EventData | None:
    try:
        pid = d["product_id"]
    except KeyError:
        return None
    ref = d.get("referrer")
    dev = d.get("device_type")
    dur = d.get("session_duration")
    if (
        type(pid) is not _str
        or not 0 < len(pid) <= _N
        or (ref is not None and type(ref) is not _str)
        or (dev is not None and type(dev) is not _str)
        or (dur is not None and (type(dur) is not _int or dur < 0))
    ):
        return None
    return ProductViewData(pid, ref, dev, dur)


def _user_activity(d: dict[str, Any]) -> EventData | None:
    try:
        act = d["activity_type"]
    except KeyError:
        return None
    url = d.get("page_url")
    sid = d.get("session_id")
    if (
        type(act) is not _str
        or not 0 < len(act) <= _N
        or (url is not None and type(url) is not _str)
        or (sid is not None and type(sid) is not _str)
    ):
        return None
    return UserActivityData(act, url, sid)


def _order(d: dict[str, Any]) -> EventData | None:
    try:
        oid = d["order_id"]
        tot = d["total_amount"]
        items = d["items"]
        status = d["status"]
        if (
            type(oid) is not _str
            or type(tot) is not _str
            or type(items) is not _list
            or type(status) is not _str
            or not items
            or not 0 < len(oid) <= _N
            or not 0 < len(status) <= _N
        ):
            return None
        out = []
        for item in items:
            pid = item["product_id"]
            qty = item["quantity"]
            price = item["price"]
            if type(pid) is not _str or type(qty) is not _int or type(price) is not _str:
                return None
            price_d = Decimal(price)
            if qty < 1 or not 0 < len(pid) <= _N or not _ZERO <= price_d < _INF:
                return None
            out.append(OrderItem(pid, qty, price_d))
        total = Decimal(tot)
        if not _ZERO <= total < _INF:
            return None
    except (KeyError, TypeError, InvalidOperation):
        # TypeError: an item that is not a dict; InvalidOperation: bad decimal text or a NaN compared.
        return None
    return OrderData(oid, total, tuple(out), status)


_FAST: Final = {
    "product_view": (EventType.PRODUCT_VIEW, _product_view),
    "user_activity": (EventType.USER_ACTIVITY, _user_activity),
    "order_event": (EventType.ORDER_EVENT, _order),
}


def fast_parse(obj: object) -> Event | None:
    """Return the event for a canonical valid input, ``None`` for anything else. Never raises."""
    if type(obj) is not _dict:
        return None
    try:
        kind = _FAST.get(obj["event_type"])
        eid = obj["event_id"]
        src = obj["source"]
        ts = obj["timestamp"]
        data = obj["data"]
        version = obj["schema_version"]
    except (KeyError, TypeError):  # TypeError: an unhashable event_type
        return None
    uid = obj.get("user_id")
    sub = obj.get("event_subtype")
    if (
        kind is None
        or type(eid) is not _str
        or type(src) is not _str
        or type(ts) is not _str
        or type(data) is not _dict
        or version != 1
        or type(version) is not _int
        or not 0 < len(eid) <= _N
        or not 0 < len(src) <= _N
        or (uid is not None and type(uid) is not _str)
        or (sub is not None and type(sub) is not _str)
    ):
        return None
    try:
        when = _fromiso(ts)
    except ValueError:
        return None
    if when.tzinfo is not UTC:
        return None
    payload = kind[1](data)
    if payload is None:
        return None
    return Event(eid, kind[0], 1, when, src, payload, uid, sub)
