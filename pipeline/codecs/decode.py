"""Decoding Kinesis record bytes into events, for every reader in the project.

Detection is by magic bytes only (KPL ``f3 89 9a c2`` with a valid MD5, gzip ``1f 8b``); everything
else is JSON text, one event or NDJSON. Bytes are never decoded as text to guess.

Guarantees of :func:`decode_record`: it never raises for any input bytes. It returns, in record order,
one :class:`DecodedEvent` per valid event and one :class:`~pipeline.exceptions.DecodeError` *value*
per unit that failed, carrying the exact raw bytes of that unit: the whole record when the record
itself is broken (bad MD5, bad gzip) or holds no event at all, the KPL sub-record when only it is
bad, an NDJSON line when other lines of its payload are events. Bytes are kept as received (a gzip
record that holds no event is kept gzipped). Nothing is printed or dropped.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import orjson

from pipeline.codecs.formats import GZIP_MAGIC
from pipeline.codecs.gzipcodec import GzipError, gunzip
from pipeline.codecs.kpl import has_kpl_magic, subrecord_payloads
from pipeline.events import Event, parse_event
from pipeline.events.fastpath import fast_parse
from pipeline.exceptions import DecodeError, EventValidationError

__all__ = ["DecodeResult", "DecodedEvent", "decode_events", "decode_record"]

_loads: Final = orjson.loads
_new: Final = tuple.__new__
_JSONDecodeError: Final = orjson.JSONDecodeError
_KPL_FIRST: Final = 0xF3
_GZIP_FIRST: Final = 0x1F
_OPEN_BRACE: Final = 0x7B
_NEWLINE: Final = 10


class DecodedEvent(NamedTuple):
    """A valid event and where it came from.

    ``sub_sequence_number`` is the KPL sub-record index (``None`` for a record that is not an
    aggregate); ``line`` is the event's line number (from 0) within its (sub-)record payload. Together with the
    sequence number they order events within a shard: see :meth:`position`.
    """

    event: Event
    shard_id: str
    sequence_number: str
    sub_sequence_number: int | None
    line: int

    def position(self) -> tuple[int, int, int]:
        """A totally ordered key within one shard: (sequence number, sub-sequence number, line)."""
        sub = -1 if self.sub_sequence_number is None else self.sub_sequence_number
        return (int(self.sequence_number or 0), sub, self.line)


DecodeResult = DecodedEvent | DecodeError


def _payload(payload: bytes, unit_raw: bytes, shard: str, seq: str, sub: int | None, out: list[DecodeResult]) -> None:
    """Decode JSON text (one event or NDJSON) into ``out``.

    When some lines are events, each bad line is one error keeping that line. When no line is an
    event (junk, or a single bad event), the whole unit is one error keeping the unit's bytes as
    received: junk stays whole instead of being cut at every newline byte.
    """
    lines = payload.split(b"\n") if b"\n" in payload else (payload,)
    before = len(out)
    append = out.append
    errors: list[tuple[int, bytes, str]] = []
    for index, line in enumerate(lines):
        if not line:
            continue
        try:
            obj = _loads(line)
        except _JSONDecodeError as exc:
            errors.append((index, line, f"invalid JSON: {exc}"))
            continue
        event = fast_parse(obj)
        if event is None:
            try:
                event = parse_event(obj)  # the careful path: accepts what the fast path declined, or explains
            except EventValidationError as exc:
                errors.append((index, line, f"invalid event: {exc}"))
                continue
        append(_new(DecodedEvent, (event, shard, seq, sub, index)))
    if len(out) > before:
        for index, line, reason in errors:
            append(DecodeError(reason, line, shard_id=shard, sequence_number=seq, sub_sequence_number=sub, line=index))
        return
    if not errors:
        reason = "payload holds no events (empty or blank lines only)"
    elif len(errors) == 1:
        reason = errors[0][2]
    else:
        reason = f"no line is an event ({len(errors)} lines); first: {errors[0][2]}"
    append(DecodeError(reason, unit_raw, shard_id=shard, sequence_number=seq, sub_sequence_number=sub))


def _inflate_then(data: bytes, shard: str, seq: str, sub: int | None, out: list[DecodeResult]) -> None:
    try:
        payload = gunzip(data)
    except GzipError as exc:
        out.append(DecodeError(str(exc), data, shard_id=shard, sequence_number=seq, sub_sequence_number=sub))
        return
    _payload(payload, data, shard, seq, sub, out)


def _kpl_record(data: bytes, shard_id: str, sequence_number: str, out: list[DecodeResult]) -> None:
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
    for sub, inner in enumerate(subs):
        if inner[:1] == b"{" and _NEWLINE not in inner:  # one JSON event: the hot path, inline
            try:
                event = fast_parse(_loads(inner))
            except _JSONDecodeError:
                event = None
            if event is not None:
                append(_new(DecodedEvent, (event, shard_id, sequence_number, sub, 0)))
                continue
            _payload(inner, inner, shard_id, sequence_number, sub, out)
        elif inner[:2] == GZIP_MAGIC:
            _inflate_then(inner, shard_id, sequence_number, sub, out)
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
            _payload(inner, inner, shard_id, sequence_number, sub, out)


def decode_record(data: bytes, shard_id: str = "", sequence_number: str = "") -> list[DecodeResult]:
    """Decode one Kinesis record's bytes. Never raises; see the module docstring for the contract."""
    out: list[DecodeResult] = []
    if not data:
        out.append(DecodeError("empty record", data, shard_id=shard_id, sequence_number=sequence_number))
        return out
    first = data[0]
    if first == _OPEN_BRACE and _NEWLINE not in data:
        # The common case, one JSON event per record: no payload split, no helper frames.
        try:
            event = fast_parse(_loads(data))
        except _JSONDecodeError:
            event = None
        if event is not None:
            out.append(_new(DecodedEvent, (event, shard_id, sequence_number, None, 0)))
            return out
        _payload(data, data, shard_id, sequence_number, None, out)  # the careful path explains
    elif first == _KPL_FIRST and has_kpl_magic(data):
        _kpl_record(data, shard_id, sequence_number, out)
    elif first == _GZIP_FIRST and data[:2] == GZIP_MAGIC:
        _inflate_then(data, shard_id, sequence_number, None, out)
    else:
        _payload(data, data, shard_id, sequence_number, None, out)
    return out


def decode_events(data: bytes) -> list[Event]:
    """Strict form for tools and tests: all events of the record, or the first :class:`DecodeError` raised."""
    events = []
    for result in decode_record(data):
        if isinstance(result, DecodeError):
            raise result
        events.append(result.event)
    return events
