"""The one typed decoder: JSON bytes to a validated :class:`~pipeline.events.types.Event`, or a reason.

msgspec decodes and checks the schema in one pass (types, required fields, the ``event_type`` tag,
string lengths, integer ranges, RFC 3339 timestamps with an offset); :func:`check_event` adds what a
schema cannot say (:mod:`pipeline.events.limits`): the event's size, UTC normalisation and its range,
the future horizon, money and metric values (finite, range, decimal places), the ``event_id``'s bytes
and a metric series key that fits a DynamoDB key.

Errors name the dotted field and say why in a producer's words (``data.items[0].price: must not be
negative``, ``event_id: is empty``, ``event_type: is missing; expected one of ...``), never a
Python type name.

Guarantees: :func:`decode_event` returns a fully validated event or raises
:class:`~pipeline.exceptions.EventValidationError`, and nothing else, for any bytes. The hot path of
the codec layer (:mod:`pipeline.codecs.decode`) uses :data:`decode_unchecked` and skips the call to
:func:`check_event` for events that need none of its checks (views and activities in UTC, within the
horizon, of at most :data:`SMALL_EVENT_BYTES`); a property test holds the two paths equal.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, cast

import msgspec
import orjson

from pipeline.events.limits import (
    DYNAMODB_PARTITION_KEY_BYTES,
    MAX_DECIMAL_PLACES,
    MAX_EVENT_BYTES,
    MAX_EVENT_ID_BYTES,
    NUMBER_LIMIT,
    ValidationPolicy,
)
from pipeline.events.types import (
    Event,
    EventType,
    OrderData,
    OrderEvent,
    SystemMetricData,
    SystemMetricEvent,
)
from pipeline.exceptions import EventValidationError

__all__ = [
    "DEFAULT_POLICY",
    "EVENT_ERRORS",
    "SMALL_EVENT_BYTES",
    "check_event",
    "decode_event",
    "decode_unchecked",
    "metric_value_ok",
    "order_money_ok",
    "parse_event",
    "translate",
]

DEFAULT_POLICY: Final = ValidationPolicy()

decode_unchecked: Final = msgspec.json.Decoder(Event).decode
"""msgspec's decode alone: schema-checked, not yet :func:`check_event`-ed. Raises :data:`EVENT_ERRORS`."""
EVENT_ERRORS: Final = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)
"""What decoding hostile bytes can raise. ``RecursionError``: msgspec refuses JSON nested deeper than
the interpreter's recursion limit (about 1,000 levels), unknown fields included; no event nests past 4."""

SMALL_EVENT_BYTES: Final = min(MAX_EVENT_ID_BYTES, DYNAMODB_PARTITION_KEY_BYTES // 3)
"""An event's JSON of at most this many bytes cannot break a size limit (see :func:`_check_sizes`)."""
_PLACES: Final = Decimal(1).scaleb(-MAX_DECIMAL_PLACES)
# In Python's default context (28 digits), ``v % _PLACES`` is zero exactly for values with at most 10
# decimal places and |v| < 10^18, and raises for larger or infinite ones: one operation for the common
# case. Any other context only sends more values to _number, which decides exactly.
_ZERO: Final = Decimal(0)
_TYPES: Final = ", ".join(t.value for t in EventType)


def decode_event(raw: bytes, not_after: datetime | None = None) -> Event:
    """Decode and validate one event's JSON bytes; raise :class:`EventValidationError` if it is not one.

    ``not_after`` is the latest event time accepted (the record's arrival plus the future horizon,
    :meth:`ValidationPolicy.not_after`); ``None`` means now plus the default horizon.
    """
    try:
        event = decode_unchecked(raw)
    except EVENT_ERRORS as exc:
        raise translate(exc) from None
    return check_event(event, raw, DEFAULT_POLICY.not_after(None) if not_after is None else not_after)


def parse_event(obj: object, not_after: datetime | None = None) -> Event:
    """:func:`decode_event` for an already-parsed JSON value (tests, tools): same rules, same errors."""
    try:
        raw = orjson.dumps(obj)
    except TypeError as exc:
        raise EventValidationError("$", f"is not JSON: {exc}") from None
    return decode_event(raw, not_after)


def check_event(event: Event, raw: bytes, not_after: datetime) -> Event:
    """The checks the schema cannot express; returns the event (timestamp normalised to UTC) or raises.

    Written for the hot path: the common case costs a few comparisons and one decimal remainder per
    money value; the precise reason is worked out only when something is wrong.
    """
    ts = event.timestamp
    if ts.tzinfo is not UTC:
        try:
            ts = ts.astimezone(UTC)
        except OverflowError:
            raise EventValidationError("timestamp", "is outside the years 1-9999 once converted to UTC") from None
        event = msgspec.structs.replace(event, timestamp=ts)
    if ts > not_after:
        raise EventValidationError(
            "timestamp", f"{ts.isoformat()} is later than {not_after.isoformat()} (the future horizon after arrival)"
        )
    if len(raw) > SMALL_EVENT_BYTES:
        _check_sizes(event, raw)
    if type(event) is OrderEvent:
        order = event.data
        if not order_money_ok(event):
            _number(order.total_amount, "data.total_amount", negative=False)
            for index, item in enumerate(order.items):
                _number(item.price, f"data.items[{index}].price", negative=False)
    elif type(event) is SystemMetricEvent and not metric_value_ok(event):
        _number(event.data.value, "data.value", negative=True)
    return event


def order_money_ok(event: Event) -> bool:
    """For an order event: True when the total and every price are certainly valid money (the common
    case, one remainder each). False means "look closer": :func:`check_event` explains, or accepts."""
    order: OrderData = event.data  # type: ignore[assignment]  # the caller checked the type: no cast() call
    places = _PLACES
    try:
        total = order.total_amount
        if total % places or total.is_signed():
            return False
        for item in order.items:
            price = item.price
            if price % places or price.is_signed():
                return False
    except ArithmeticError:  # infinite, NaN, or too large for the remainder
        return False
    return True


def metric_value_ok(event: Event) -> bool:
    """For a metric event: True when its value is certainly valid; False means "look closer"."""
    try:
        return not cast(SystemMetricData, event.data).value % _PLACES
    except ArithmeticError:
        return False


def _check_sizes(event: Event, raw: bytes) -> None:
    """Limits no event of :data:`SMALL_EVENT_BYTES` or fewer can break (a decoded string never has more
    UTF-8 bytes than its JSON text, and escaping a series key at most triples it)."""
    if len(raw) > MAX_EVENT_BYTES:
        raise EventValidationError("$", f"is {len(raw):,} bytes; an event is at most {MAX_EVENT_BYTES:,} bytes of JSON")
    if len(event.event_id.encode()) > MAX_EVENT_ID_BYTES:
        raise EventValidationError("event_id", f"is longer than {MAX_EVENT_ID_BYTES} bytes in UTF-8")
    if type(event) is SystemMetricEvent:
        size = len(event.data.series_key().encode())
        if size > DYNAMODB_PARTITION_KEY_BYTES:
            raise EventValidationError(
                "data.dimensions",
                f"the metric series (name and dimensions) is {size:,} bytes; a DynamoDB key holds at most "
                f"{DYNAMODB_PARTITION_KEY_BYTES:,}",
            )


def _number(value: Decimal, field: str, *, negative: bool) -> None:
    """Money and measurements: finite, ``|v| < 10^18``, at most 10 decimal places; money not negative.

    Decides from the value alone (not from the thread's decimal context): returns if it is valid.
    """
    if not value.is_finite():
        raise EventValidationError(field, f"must be a finite number, not {value}")
    if not negative and value < 0:
        raise EventValidationError(field, "must not be negative")
    if value and value.adjusted() >= NUMBER_LIMIT.adjusted():
        raise EventValidationError(field, "must be less than 10^18 in absolute value")
    _, digits, exponent = value.as_tuple()
    significant = "".join(map(str, digits)).rstrip("0")
    if significant and isinstance(exponent, int) and exponent + len(digits) - len(significant) < -MAX_DECIMAL_PLACES:
        raise EventValidationError(field, f"has more than {MAX_DECIMAL_PLACES} decimal places")


# --------------------------------------------------------------------------- msgspec errors in words

_AT: Final = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING: Final = re.compile(r"Object missing required field `(?P<name>[^`]*)`")
_LENGTH: Final = re.compile(r"Expected `(?P<kind>str|array|object)` of length (?P<op>[<>]=) (?P<n>\d+)")
_RANGE: Final = re.compile(r"Expected `(?P<kind>int|float)` (?P<op>[<>]=?) (?P<n>[-\d.e+]+)")
_EXPECTED: Final = re.compile(r"Expected `(?P<want>[^`]*)`, got `(?P<got>[^`]*)`")
_INVALID_VALUE: Final = re.compile(r"Invalid (?:enum )?value (?P<value>.*)")
_WORDS: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "decimal": 'a decimal number (a string like "19.99" or a JSON number)',
    "datetime": "an RFC 3339 date-time with an offset, e.g. 2026-11-24T10:15:00Z",
    "object": "an object",
    "array": "a list",
    "null": "null",
    "bool": "true or false",
}


def _words(kinds: str) -> str:
    return " or ".join(_WORDS.get(kind.strip(), kind.strip()) for kind in kinds.split("|"))


def _field(path: str | None) -> str:
    if not path or path == "$":
        return "$"
    return path[2:] if path.startswith("$.") else path.lstrip("$")


def translate(error: Exception) -> EventValidationError:
    """A msgspec decode or validation error as :class:`EventValidationError` in a producer's words."""
    if isinstance(error, RecursionError):
        return EventValidationError("$", "invalid JSON: nested too deeply (about 1,000 levels at most)")
    if isinstance(error, msgspec.DecodeError) and not isinstance(error, msgspec.ValidationError):
        return EventValidationError("$", f"invalid JSON: {str(error).removeprefix('JSON is malformed: ')}")
    match = _AT.match(str(error))
    message = match.group("message") if match else str(error)
    field = _field(match.group("path") if match else None)
    return EventValidationError(*_explain(message, field))


def _explain(message: str, field: str) -> tuple[str, str]:  # noqa: PLR0912 - one branch per msgspec message
    if found := _MISSING.fullmatch(message):
        name = found.group("name")
        full = name if field == "$" else f"{field}.{name}"
        if name == "event_type":
            return full, f"is missing; expected one of {_TYPES}"
        return full, "is missing"
    if found := _LENGTH.fullmatch(message):
        n, kind, op = int(found.group("n")), found.group("kind"), found.group("op")
        unit = {"str": "characters", "array": "entries", "object": "entries"}[kind]
        if op == ">=":
            return field, "is empty"
        return field, f"is longer than {n} {unit}" if kind == "str" else f"has more than {n} {unit}"
    if found := _RANGE.fullmatch(message):
        op, bound = found.group("op"), found.group("n")
        if op == ">=" and bound == "1":
            return field, "must be a positive integer"
        if op == ">=" and bound == "0":
            return field, "must not be negative"
        if op.startswith("<"):
            return field, f"must be at most {bound}"
        return field, f"must be at least {bound}"
    if message.startswith("Expected `str` matching regex"):
        return field, "is blank"
    if message == "Expected `datetime` with a timezone component":
        return field, "must carry a UTC offset (naive times are ambiguous), e.g. 2026-11-24T10:15:00Z"
    if message == "Invalid RFC3339 encoded datetime":
        return field, "is not an RFC 3339 (ISO-8601) date-time with an offset, e.g. 2026-11-24T10:15:00Z"
    if message == "Invalid decimal string":
        return field, 'is not a decimal number (write it like "19.99")'
    if found := _EXPECTED.fullmatch(message):
        if field == "$":
            return field, f"an event must be a JSON object, not {_words(found.group('got'))}"
        return field, f"must be {_words(found.group('want'))}, not {_words(found.group('got'))}"
    if found := _INVALID_VALUE.fullmatch(message):
        value = found.group("value")
        if field == "event_type":
            return field, f"unknown event type {value}; expected one of {_TYPES}"
        if field == "schema_version":
            return field, f"unsupported schema version {value}; supported: 1"
        return field, f"invalid value {value}"
    return field, message
