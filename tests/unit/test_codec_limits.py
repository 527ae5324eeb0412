"""The codec's limits on hostile input: KPL sub-record count, gzip expansion.

Each limit ends a unit as one :class:`~pipeline.exceptions.DecodeError` that keeps its raw bytes;
nothing raises. (Memory under these inputs: tests/functional/test_hostile_input.py.)
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pipeline.codecs import KPL_MAGIC, decode_record
from pipeline.codecs.formats import MAX_DECOMPRESSED_BYTES, MAX_KPL_SUBRECORDS
from pipeline.codecs.gzipcodec import gzip_bytes
from pipeline.codecs.kpl import subrecord_payloads
from pipeline.exceptions import DecodeError

NOT_AFTER = datetime(2030, 1, 1, tzinfo=UTC)


def _kpl_of_empty_subrecords(count: int) -> bytes:
    body = b"\x0a\x01k" + b"\x1a\x00" * count
    return KPL_MAGIC + body + hashlib.md5(body).digest()  # noqa: S324 - the format's checksum


def test_kpl_aggregate_at_the_subrecord_limit_is_read() -> None:
    assert len(subrecord_payloads(_kpl_of_empty_subrecords(MAX_KPL_SUBRECORDS))) == MAX_KPL_SUBRECORDS


def test_kpl_aggregate_past_the_subrecord_limit_is_one_error_keeping_the_record() -> None:
    data = _kpl_of_empty_subrecords(MAX_KPL_SUBRECORDS + 1)
    (result,) = decode_record(data, "s", "1", NOT_AFTER)
    assert isinstance(result, DecodeError)
    assert result.raw == data
    assert "more than 100,000 user records" in result.reason


def test_gzip_expanding_past_the_limit_is_one_error_keeping_the_compressed_bytes() -> None:
    bomb = gzip_bytes(bytes(MAX_DECOMPRESSED_BYTES + 1))
    (result,) = decode_record(bomb, "s", "1", NOT_AFTER)
    assert isinstance(result, DecodeError)
    assert result.raw == bomb
    assert "inflates past" in result.reason
