"""Decoding Kinesis record bytes into events, for every reader in the project.

Detection is by magic bytes only (KPL ``f3 89 9a c2`` with a valid MD5, gzip ``1f 8b``); everything
else is JSON text: one event (compact or pretty-printed) or NDJSON. Bytes are never decoded as text to
guess. Each event goes through the one typed decoder (:mod:`pipeline.events.decoder`).

Guarantees of :func:`decode_record` and :func:`decode_records`: they never raise for any input bytes.
They return, in record order, one :class:`DecodedEvent` per valid event and one
:class:`~pipeline.exceptions.DecodeError` *value* per unit that failed, carrying the exact raw bytes of
that unit: the whole record when the record itself is broken (bad MD5, bad gzip) or holds no event at
all, the KPL sub-record when only it is bad, an NDJSON line when other lines of its payload are
events. Bytes are kept as received (a gzip record that holds no event is kept gzipped). Nothing is
printed or dropped. Each valid event keeps its own raw JSON bytes (:attr:`DecodedEvent.raw`), unknown
fields included, for the archive.

Limits on hostile input, each ending as one error value with its reason: a gzip payload inflating past
:data:`~pipeline.codecs.formats.MAX_DECOMPRESSED_BYTES` (16 MiB; never inflated further), a KPL
aggregate of more than :data:`~pipeline.codecs.formats.MAX_KPL_SUBRECORDS` user records, JSON nested
deeper than about 1,000 levels, an event's JSON over 1 MiB. Memory stays a small multiple of the
record's size plus 16 MiB (measured: tests/functional/test_hostile_input.py).

The hot path (a JSON event that msgspec decodes and whose checks pass inline) is written flat: in
CPython a helper call costs as much as several checks, and it runs once per event in the consumer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import msgspec

from pipeline.codecs.formats import GZIP_MAGIC
from pipeline.codecs.gzipcodec import GzipError, gunzip
from pipeline.codecs.kpl import has_kpl_magic, subrecord_payloads
from pipeline.events import (
    DEFAULT_POLICY,
    Event,
    OrderEvent,
    ProductViewEvent,
    SystemMetricEvent,
    UserActivityEvent,
    ValidationPolicy,
)
from pipeline.events.decoder import (
    EVENT_ERRORS,
    SMALL_EVENT_BYTES,
    check_event,
    decode_unchecked,
    metric_value_ok,
    order_money_ok,
    translate,
)
from pipeline.events.limits import LATEST_EVENT_TIME
from pipeline.exceptions import DecodeError, EventValidationError
from pipeline.stream import StreamRecord

__all__ = ["DecodeResult", "DecodedEvent", "decode_events", "decode_record", "decode_records"]

_decode: Final = decode_unchecked
_any_json: Final = msgspec.json.Decoder().decode
_ERRORS: Final = EVENT_ERRORS
_UTC: Final = UTC
_PV: Final = ProductViewEvent
_UA: Final = UserActivityEvent
_OE: Final = OrderEvent
_SM: Final = SystemMetricEvent
_SMALL: Final = SMALL_EVENT_BYTES
_KPL_FIRST: Final = 0xF3
_GZIP_FIRST: Final = 0x1F
_OPEN_BRACE: Final = 0x7B


class DecodedEvent(msgspec.Struct, frozen=True, gc=False):
    """A valid event, where it came from, and its raw JSON bytes as the producer wrote them.

    ``sub_sequence_number`` is the KPL sub-record index (``None`` for a record that is not an
    aggregate); ``line`` is the event's line number (from 0) within its (sub-)record payload. Together
    with the sequence number they order events within a shard: see :meth:`position`. Immutable.
    """

    event: Event
    shard_id: str
    sequence_number: str
    sub_sequence_number: int | None
    line: int
    raw: bytes

    def position(self) -> tuple[int, int, int]:
        """A totally ordered key within one shard: (sequence number, sub-sequence number, line)."""
        sub = -1 if self.sub_sequence_number is None else self.sub_sequence_number
        return (int(self.sequence_number or 0), sub, self.line)


DecodeResult = DecodedEvent | DecodeError
_Decoded: Final = DecodedEvent


def _reason(error: Exception) -> str:
    """A bad event's reason: ``invalid JSON: ...`` or ``invalid event: <field>: <reason>``."""
    if not isinstance(error, EventValidationError):
        error = translate(error)
    if error.field == "$" and error.reason.startswith("invalid JSON"):
        return error.reason
    return f"invalid event: {error}"


def _checked(text: bytes, event: Event | None, not_after: datetime) -> Event | str:
    """The careful path for one JSON text (``event``: its schema-checked decode, if it had one): the
    event, or the reason it is not one."""
    try:
        return check_event(_decode(text) if event is None else event, text, not_after)
    except (*_ERRORS, EventValidationError) as exc:
        return _reason(exc)


def _payload(
    payload: bytes,
    unit_raw: bytes,
    shard: str,
    seq: str,
    sub: int | None,
    not_after: datetime,
    out: list[DecodeResult],
) -> None:
    """Decode JSON text (one event, or NDJSON) into ``out``.

    When some lines are events, each bad line is one error keeping that line. When no line is an
    event (junk, or a single bad event), the whole unit is one error keeping the unit's bytes as
    received: junk stays whole instead of being cut at every newline byte.
    """
    if _one_value(payload, unit_raw, shard, seq, sub, not_after, out):
        return
    before = len(out)
    errors = _lines(payload, shard, seq, sub, not_after, out)
    if len(out) > before:
        for index, line, reason in errors:
            out.append(
                DecodeError(reason, line, shard_id=shard, sequence_number=seq, sub_sequence_number=sub, line=index)
            )
        return
    if not errors:
        reason = "payload holds no events (empty or blank lines only)"
    elif len(errors) == 1:
        reason = errors[0][2]
    else:
        reason = f"no line is an event ({len(errors)} lines); first: {errors[0][2]}"
    out.append(DecodeError(reason, unit_raw, shard_id=shard, sequence_number=seq, sub_sequence_number=sub))


def _one_value(
    payload: bytes,
    unit_raw: bytes,
    shard: str,
    seq: str,
    sub: int | None,
    not_after: datetime,
    out: list[DecodeResult],
) -> bool:
    """Handle a payload that is one JSON value (one line, or one event pretty-printed over several);
    False when it is not (NDJSON, or junk with newlines), for the line-by-line path."""
    if b"\n" not in payload.strip():
        checked = _checked(payload, None, not_after)
    elif payload.lstrip()[:1] == b"{":  # one event, pretty-printed (whitespace before it included)
        try:
            whole = _decode(payload)
        except msgspec.ValidationError as exc:  # not an event: one JSON value, or NDJSON whose first line is bad
            if not _single_value(payload):
                return False
            checked = _reason(exc)
        except (msgspec.DecodeError, RecursionError):  # not one JSON value (NDJSON, junk), or too deep
            return False
        else:
            checked = _checked(payload, whole, not_after)
    else:
        return False
    if isinstance(checked, str):
        out.append(DecodeError(checked, unit_raw, shard_id=shard, sequence_number=seq, sub_sequence_number=sub))
    else:
        out.append(_Decoded(checked, shard, seq, sub, 0, payload))
    return True


def _single_value(payload: bytes) -> bool:
    """True when ``payload`` is exactly one JSON value (whatever its shape), not several lines of them."""
    try:
        _any_json(payload)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def _lines(
    payload: bytes, shard: str, seq: str, sub: int | None, not_after: datetime, out: list[DecodeResult]
) -> list[tuple[int, bytes, str]]:
    """Each NDJSON line's event into ``out`` (the gzip-batch hot path, inline); the bad lines returned."""
    append = out.append
    decode = _decode
    errors: list[tuple[int, bytes, str]] = []
    for index, line in enumerate(payload.split(b"\n")):
        if not line or line.isspace():
            continue
        try:
            event = decode(line)
        except _ERRORS as exc:
            errors.append((index, line, _reason(exc)))
            continue
        ts = event.timestamp
        if ts.tzinfo is _UTC and ts <= not_after and len(line) <= _SMALL:
            kind = type(event)
            if (
                kind is _PV
                or kind is _UA
                or (kind is _OE and order_money_ok(event))
                or (kind is _SM and metric_value_ok(event))
            ):
                append(_Decoded(event, shard, seq, sub, index, line))
                continue
        checked = _checked(line, event, not_after)
        if isinstance(checked, str):
            errors.append((index, line, checked))
        else:
            append(_Decoded(checked, shard, seq, sub, index, line))
    return errors


def _inflate_then(
    data: bytes, shard: str, seq: str, sub: int | None, not_after: datetime, out: list[DecodeResult]
) -> None:
    try:
        payload = gunzip(data)
    except GzipError as exc:
        out.append(DecodeError(str(exc), data, shard_id=shard, sequence_number=seq, sub_sequence_number=sub))
        return
    _payload(payload, data, shard, seq, sub, not_after, out)


def _kpl_record(data: bytes, shard_id: str, sequence_number: str, not_after: datetime, out: list[DecodeResult]) -> None:
    try:
        subs = subrecord_payloads(data)
    except DecodeError as exc:
        exc.shard_id, exc.sequence_number = shard_id, sequence_number
        out.append(exc)
        return
    if not subs:
        out.append(
            DecodeError("KPL aggregate holds no user records", data, shard_id=shard_id, sequence_number=sequence_number)
        )
    append = out.append
    decode = _decode
    for sub, inner in enumerate(subs):
        if inner[:1] == b"{":  # one JSON event per sub-record: the KPL hot path, inline
            try:
                event = decode(inner)
            except _ERRORS:
                _payload(inner, inner, shard_id, sequence_number, sub, not_after, out)
                continue
            ts = event.timestamp
            if ts.tzinfo is _UTC and ts <= not_after and len(inner) <= _SMALL:
                kind = type(event)
                if (
                    kind is _PV
                    or kind is _UA
                    or (kind is _OE and order_money_ok(event))
                    or (kind is _SM and metric_value_ok(event))
                ):
                    append(_Decoded(event, shard_id, sequence_number, sub, 0, inner))
                    continue
            _payload(inner, inner, shard_id, sequence_number, sub, not_after, out)
        elif inner[:2] == GZIP_MAGIC:
            _inflate_then(inner, shard_id, sequence_number, sub, not_after, out)
        elif has_kpl_magic(inner):
            out.append(
                DecodeError(
                    "nested KPL aggregate inside a KPL sub-record",
                    inner,
                    shard_id=shard_id,
                    sequence_number=sequence_number,
                    sub_sequence_number=sub,
                )
            )
        else:
            _payload(inner, inner, shard_id, sequence_number, sub, not_after, out)


def _record(data: bytes, shard_id: str, sequence_number: str, not_after: datetime, out: list[DecodeResult]) -> None:
    """Every result of one record that is not a single valid JSON event, into ``out``."""
    if not data:
        out.append(DecodeError("empty record", data, shard_id=shard_id, sequence_number=sequence_number))
        return
    first = data[0]
    if first == _KPL_FIRST and has_kpl_magic(data):
        _kpl_record(data, shard_id, sequence_number, not_after, out)
    elif first == _GZIP_FIRST and data[:2] == GZIP_MAGIC:
        _inflate_then(data, shard_id, sequence_number, None, not_after, out)
    else:
        _payload(data, data, shard_id, sequence_number, None, not_after, out)


def decode_record(
    data: bytes, shard_id: str = "", sequence_number: str = "", not_after: datetime | None = None
) -> list[DecodeResult]:
    """Decode one Kinesis record's bytes. Never raises; see the module docstring for the contract.

    ``not_after`` is the latest event time accepted: the record's arrival plus the future horizon
    (:meth:`~pipeline.events.ValidationPolicy.not_after`); ``None`` means now plus the default horizon.
    """
    out: list[DecodeResult] = []
    _record(data, shard_id, sequence_number, DEFAULT_POLICY.not_after(None) if not_after is None else not_after, out)
    return out


def decode_records(records: Sequence[StreamRecord], policy: ValidationPolicy = DEFAULT_POLICY) -> list[DecodeResult]:
    """:func:`decode_record` of every record, in order, each judged against its own arrival plus the
    policy's horizon: the consumer's hot path (one call per batch, the single-event case inline).

    Never raises for any record bytes; the same results as :func:`decode_record` per record.
    """
    out: list[DecodeResult] = []
    append = out.append
    decode = _decode
    latest = LATEST_EVENT_TIME
    for record in records:
        data = record.data
        try:
            event = decode(data)  # gzip, KPL and NDJSON records fail here at once and take _record
        except _ERRORS:
            _record(data, record.shard_id, record.sequence_number, policy.not_after(record.arrival), out)
            continue
        ts = event.timestamp
        # Within the horizon without computing it: ts <= arrival <= LATEST_EVENT_TIME implies
        # ts <= policy.not_after(arrival) (the horizon is never negative). An event dated after its
        # record's arrival (a producer clock ahead) takes the careful path, judged on its own arrival.
        if ts.tzinfo is _UTC and ts <= record.arrival <= latest and len(data) <= _SMALL:
            kind = type(event)
            if (
                kind is _PV
                or kind is _UA
                or (kind is _OE and order_money_ok(event))
                or (kind is _SM and metric_value_ok(event))
            ):
                append(_Decoded(event, record.shard_id, record.sequence_number, None, 0, data))
                continue
        checked = _checked(data, event, policy.not_after(record.arrival))
        if isinstance(checked, str):
            append(DecodeError(checked, data, shard_id=record.shard_id, sequence_number=record.sequence_number))
        else:
            append(_Decoded(checked, record.shard_id, record.sequence_number, None, 0, data))
    return out


def decode_events(data: bytes, not_after: datetime | None = None) -> list[Event]:
    """Strict form for tools and tests: all events of the record, or the first :class:`DecodeError` raised."""
    events = []
    for result in decode_record(data, not_after=not_after):
        if isinstance(result, DecodeError):
            raise result
        events.append(result.event)
    return events
