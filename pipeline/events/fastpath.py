"""The optimistic fast path of ``parse_event``: one pass of cheap checks for the common, valid case.

Contract (checked by a property test against :func:`~pipeline.events.validate.checked_parse`): for
every input, ``fast_parse`` returns either ``None`` (unsure: let the careful validator decide and
explain) or exactly the event the careful validator would return. It never raises. It handles the
canonical shapes producers write (UTC timestamps, money as strings, integer durations); anything
else, valid or not, takes the careful path.

Written flat on purpose: in CPython a helper call costs about as much as three field checks, and this
runs once per event on the consumer's hot path. Objects are built with ``tuple.__new__`` directly,
which is what a named tuple's own constructor does after an extra Python frame.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from pipeline.events.types import (
    MAX_ID_LENGTH,
    Event,
    EventType,
    OrderData,
    OrderItem,
    ProductViewData,
    SystemMetricData,
    UserActivityData,
)

__all__ = ["fast_parse"]

_new: Final = tuple.__new__  # builds a named tuple without its Python-level __new__ frame
_fromiso: Final = datetime.fromisoformat
_str: Final = str
_int: Final = int
_dict: Final = dict
_list: Final = list
_ZERO: Final = Decimal(0)
_INF: Final = Decimal("Infinity")
_N: Final = MAX_ID_LENGTH


_PV: Final = EventType.PRODUCT_VIEW
_UA: Final = EventType.USER_ACTIVITY
_OE: Final = EventType.ORDER_EVENT
_SM: Final = EventType.SYSTEM_METRIC


def fast_parse(obj: object) -> Event | None:  # noqa: PLR0912, PLR0915 - flat by design, see module doc
    """Return the event for a canonical valid input, ``None`` for anything else. Never raises."""
    if type(obj) is not _dict:
        return None
    try:
        kind = obj["event_type"]
        eid = obj["event_id"]
        src = obj["source"]
        ts = obj["timestamp"]
        d = obj["data"]
        version = obj["schema_version"]
    except KeyError:
        return None
    uid = obj.get("user_id")
    sub = obj.get("event_subtype")
    if (
        type(eid) is not _str
        or type(src) is not _str
        or type(ts) is not _str
        or type(d) is not _dict
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
    data: object
    try:
        if kind == "product_view":
            event_type = _PV
            pid = d["product_id"]
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
            data = _new(ProductViewData, (pid, ref, dev, dur))
        elif kind == "user_activity":
            event_type = _UA
            act = d["activity_type"]
            url = d.get("page_url")
            sid = d.get("session_id")
            if (
                type(act) is not _str
                or not 0 < len(act) <= _N
                or (url is not None and type(url) is not _str)
                or (sid is not None and type(sid) is not _str)
            ):
                return None
            data = _new(UserActivityData, (act, url, sid))
        elif kind == "order_event":
            event_type = _OE
            data = _order(d)
        elif kind == "system_metric":
            event_type = _SM
            name = d["name"]
            value = d["value"]
            unit = d["unit"]
            dims = d.get("dimensions")
            if (
                type(name) is not _str
                or type(value) is not _str
                or type(unit) is not _str
                or type(dims) is not _dict
                or not 0 < len(name) <= _N
                or not 0 < len(unit) <= _N
            ):
                return None
            for dim in dims.values():
                if type(dim) is not _str:
                    return None
            amount = Decimal(value)
            if not amount.is_finite():
                return None
            data = _new(SystemMetricData, (name, amount, unit, dims))
        else:
            return None
    except (KeyError, TypeError, InvalidOperation):
        # KeyError: a required field is missing; TypeError: an item that is not an object;
        # InvalidOperation: bad decimal text, or a NaN compared. The careful path explains which.
        return None
    if data is None:
        return None
    return _new(Event, (eid, event_type, 1, when, src, data, uid, sub))


def _order(d: dict[str, Any]) -> OrderData | None:
    """Raises KeyError, TypeError or InvalidOperation on malformed input; the caller turns them into None."""
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
        out.append(_new(OrderItem, (pid, qty, price_d)))
    total = Decimal(tot)
    if not _ZERO <= total < _INF:
        return None
    return _new(OrderData, (oid, total, tuple(out), status))
