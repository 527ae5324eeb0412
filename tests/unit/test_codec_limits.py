"""The codec's limits on hostile input: KPL sub-record count, JSON nesting depth, gzip expansion.

Each limit ends a unit as one :class:`~pipeline.exceptions.DecodeError` that keeps its raw bytes;
nothing raises. (Memory under these inputs: tests/functional/test_hostile_input.py.)
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from pipeline.codecs import KPL_MAGIC, DecodedEvent, decode_record
from pipeline.codecs.formats import MAX_DECOMPRESSED_BYTES, MAX_KPL_SUBRECORDS
from pipeline.codecs.gzipcodec import gzip_bytes
from pipeline.codecs.kpl import subrecord_payloads
from pipeline.exceptions import DecodeError

NOT_AFTER = datetime(2030, 1, 1, tzinfo=UTC)
EVENT = (
    b'{"event_id":"e1","event_type":"product_view","schema_version":1,'
    b'"timestamp":"2026-11-20T11:59:00Z","source":"t","data":{"product_id":"p"}}'
)


def _kpl_of_empty_subrecords(count: int) -> bytes:
    body = b"\x0a\x01k" + b"\x1a\x00" * count
    return KPL_MAGIC + body + hashlib.md5(body).digest()  # noqa: S324 - the format's checksum


def _deep(depth: int) -> bytes:
    return b'{"event_id":"d","data":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


def test_kpl_aggregate_at_the_subrecord_limit_is_read() -> None:
    assert len(subrecord_payloads(_kpl_of_empty_subrecords(MAX_KPL_SUBRECORDS))) == MAX_KPL_SUBRECORDS


def test_kpl_aggregate_past_the_subrecord_limit_is_one_error_keeping_the_record() -> None:
    data = _kpl_of_empty_subrecords(MAX_KPL_SUBRECORDS + 1)
    (result,) = decode_record(data, "s", "1", NOT_AFTER)
    assert isinstance(result, DecodeError)
    assert result.raw == data
    assert "more than 100,000 user records" in result.reason


def test_kpl_aggregate_past_the_limit_in_overlong_tags_is_one_error_keeping_the_record() -> None:
    # GIVEN records whose tags are overlong varints (9a 00 = 0x1a), which the byte count before parsing misses
    body = b"\x0a\x01k" + b"\x9a\x00\x00" * (MAX_KPL_SUBRECORDS + 1)
    data = KPL_MAGIC + body + hashlib.md5(body).digest()  # noqa: S324 - the format's checksum
    # WHEN decoded THEN one error keeping the record, not 100,001 bad rows
    (result,) = decode_record(data, "s", "1", NOT_AFTER)
    assert isinstance(result, DecodeError)
    assert result.raw == data
    assert "more than 100,000 user records" in result.reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(_deep(5_000), "nested too deeply", id="one-line"),
        # Over several lines it may be NDJSON whose first line is deep: each line is judged instead.
        pytest.param(_deep(5_000).replace(b'"data":', b'"data":\n'), "no line is an event", id="pretty-printed"),
        pytest.param(b"[" * 5_000 + b"]" * 5_000, "must be a JSON object", id="bare-array"),
        pytest.param(gzip_bytes(_deep(5_000)), "nested too deeply", id="gzipped"),
    ],
)
def test_deeply_nested_json_is_one_error_not_a_recursion_error(payload: bytes, reason: str) -> None:
    (result,) = decode_record(payload, "s", "1", NOT_AFTER)
    assert isinstance(result, DecodeError)
    assert result.raw == payload
    assert reason in result.reason


def test_deeply_nested_line_among_events_spoils_only_its_line() -> None:
    deep = _deep(5_000)
    results = decode_record(EVENT + b"\n" + deep + b"\n" + EVENT.replace(b"e1", b"e2"), "s", "1", NOT_AFTER)
    assert [type(r) for r in results] == [DecodedEvent, DecodedEvent, DecodeError]
    assert isinstance(results[2], DecodeError)
    assert results[2].raw == deep
    assert results[2].line == 1


def test_gzip_expanding_past_the_limit_is_one_error_keeping_the_compressed_bytes() -> None:
    bomb = gzip_bytes(bytes(MAX_DECOMPRESSED_BYTES + 1))
    (result,) = decode_record(bomb, "s", "1", NOT_AFTER)
    assert isinstance(result, DecodeError)
    assert result.raw == bomb
    assert "inflates past" in result.reason
