"""Fuzzing the decoder: whatever the bytes, only typed decode errors that keep the raw bytes.

Inputs: random bytes, and valid records of every format mutated (truncated, bit-flipped, spliced,
MD5 replaced, non-UTF-8 injected, magic bytes forced). 5,000 cases per run mutate records drawn from
a fixed pool of valid records (reference events and edge-case events, 1-6 per record, every format);
300 more mutate records of arbitrary hypothesis-built events. Building events with hypothesis costs
about 17 ms a case against well under 1 ms for the decoding under test, so the pool keeps the
mutation count at 5,000 for a few seconds instead of about 90.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codecs import KPL_MAGIC, DecodedEvent, RecordFormat, decode_events, decode_record, encode_records
from pipeline.codecs.formats import GZIP_MAGIC
from pipeline.codecs.gzipcodec import gzip_bytes
from pipeline.events import Event, OrderData, OrderItem, SystemMetricData, UserActivityData, new_event
from pipeline.exceptions import DecodeError
from tests.strategies import events
from tools.generate import generate_events

pytestmark = pytest.mark.library  # the embeddable library: ./dev test also runs it on 3.11 and 3.13


@st.composite
def valid_records(draw: st.DrawFn) -> bytes:
    batch = draw(st.lists(events(), min_size=1, max_size=6))
    fmt = draw(st.sampled_from(list(RecordFormat)))
    return encode_records(batch, fmt)[0].data


def _edge_events() -> list[Event]:
    """Valid events at the edges the reference workload does not reach: non-ASCII text, the longest
    ids, ten decimal places, the largest quantity, a dimensioned metric."""
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return [
        new_event(
            event_id="é" * 256,
            timestamp=at,
            source="ソース",
            user_id="u" * 256,
            data=UserActivityData("👀", "https://example.com/" + "ü" * 100, "s-1"),
        ),
        new_event(
            event_id="o-edge",
            timestamp=at,
            source="web",
            data=OrderData(
                "o-1",
                Decimal("999999999999999999.9999999999"),
                (OrderItem("p-1", 10**9, Decimal("0.0000000001")),),
                "Pending",
            ),
        ),
        new_event(
            event_id="m-edge",
            timestamp=at,
            source="svc",
            data=SystemMetricData("latency|p99", Decimal("-1E-10"), "ms", {"k=1": "v,2", "%": "|"}),
        ),
    ]


@cache
def _pool() -> tuple[bytes, ...]:
    """Valid records of every format holding 1-6 events: reference events of all four types, and the
    edge events in each position."""
    reference = list(generate_events(60, seed=29))
    edge = _edge_events()
    batches = [reference[i : i + size] for size in (1, 2, 3, 6) for i in range(0, 24, size)]
    batches += [[e] for e in edge] + [edge] + [[*reference[:2], *edge]]
    return tuple(encode_records(batch, fmt)[0].data for batch in batches for fmt in RecordFormat)


@st.composite
def pooled_records(draw: st.DrawFn) -> bytes:
    return draw(st.sampled_from(_pool()))


def _flip(data: bytes, position: int, bit: int) -> bytes:
    if not data:
        return data
    i = position % len(data)
    return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]


@st.composite
def hostile_records(draw: st.DrawFn, valid: st.SearchStrategy[bytes] | None = None) -> bytes:
    """A record to decode: random bytes, or a valid record (from ``valid``, default the pool) mutated."""
    valid = pooled_records() if valid is None else valid
    kind = draw(st.sampled_from(["random", "truncate", "flip", "md5", "non-utf8", "magic", "splice", "valid"]))
    if kind == "random":
        return draw(st.binary(max_size=400))
    data = draw(valid)
    if kind == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if kind == "flip":
        for _ in range(draw(st.integers(1, 3))):
            data = _flip(data, draw(st.integers(0, 10**6)), draw(st.integers(0, 7)))
        return data
    if kind == "md5":
        body = data[4:-16] if data[:4] == KPL_MAGIC else data
        return KPL_MAGIC + body + draw(st.binary(min_size=16, max_size=16))
    if kind == "non-utf8":
        i = draw(st.integers(0, len(data)))
        return data[:i] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"])) + data[i:]
    if kind == "magic":
        prefix = draw(st.sampled_from([KPL_MAGIC, GZIP_MAGIC]))
        body = draw(st.binary(max_size=200))
        if prefix == KPL_MAGIC and draw(st.booleans()):
            return KPL_MAGIC + body + hashlib.md5(body).digest()  # noqa: S324 - format checksum
        return prefix + body
    if kind == "splice":
        other = draw(valid)
        return data[: len(data) // 2] + other[len(other) // 2 :]
    return data


def _check(data: bytes) -> None:
    results = decode_record(data, "shardId-000000000000", "1")
    assert results, "every record yields at least one event or one error"
    for result in results:
        if isinstance(result, DecodeError):
            assert result.reason
            assert isinstance(result.raw, bytes)
            if result.sub_sequence_number is None and result.line is None:
                assert result.raw == data  # a whole-record failure keeps the whole record
            else:
                assert len(result.raw) > 0 or data == b""
            assert result.sequence_number == "1"
        else:
            assert isinstance(result, DecodedEvent)
    with contextlib.suppress(DecodeError):  # the strict form raises only the typed error
        decode_events(data)


@pytest.mark.slow  # a few seconds; the gate runs it on Python 3.12 only, not in the 3.11 and 3.13 library runs
@given(hostile_records())
@settings(max_examples=5_000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_decoder_never_raises_anything_but_typed_errors(data: bytes) -> None:
    # GIVEN any bytes, mostly near-valid records WHEN decoded THEN only events and typed errors with raw bytes
    _check(data)


@pytest.mark.slow  # about five seconds (hypothesis builds every event)
@given(hostile_records(valid_records()))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_mutated_records_of_arbitrary_events_decode_into_typed_errors(data: bytes) -> None:
    # GIVEN records of any valid events (any text, amounts, times), mutated WHEN decoded THEN the same contract
    _check(data)


def test_the_pool_holds_valid_records_of_every_format_and_event_type() -> None:
    # The pool the 5,000 mutations start from: every record decodes whole, all formats and types appear
    pool = _pool()
    decoded = [decode_events(data) for data in pool]
    assert all(decoded)
    assert {e.event_type for batch in decoded for e in batch} == {
        "order_event",
        "product_view",
        "user_activity",
        "system_metric",
    }
    assert {data[:4] == KPL_MAGIC for data in pool} == {True, False}
    assert {data[:2] == GZIP_MAGIC for data in pool} == {True, False}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(os.urandom(1024 * 1024), id="1MiB-random"),
        pytest.param(b"{" * (1024 * 1024), id="1MiB-open-braces"),
        pytest.param(b"[" * 2000 + b"]" * 2000, id="deep-nesting"),
        pytest.param(gzip_bytes(b"\n" * (1024 * 1024)), id="gzip-of-blank-lines"),
        pytest.param(gzip_bytes(b"a" * (64 * 1024 * 1024)), id="gzip-bomb-64MiB"),
        pytest.param(KPL_MAGIC + os.urandom(1024 * 1024), id="1MiB-kpl-magic"),
        pytest.param(b"", id="empty"),
    ],
)
def test_oversized_and_pathological_records(data: bytes) -> None:
    # GIVEN junk of up to a megabyte, a gzip bomb, deep nesting WHEN decoded THEN typed errors only
    _check(data)


def test_gzip_bomb_is_reported_not_inflated() -> None:
    bomb = gzip_bytes(b"a" * (64 * 1024 * 1024))
    (error,) = decode_record(bomb)
    assert isinstance(error, DecodeError)
    assert "inflates past" in error.reason
    assert error.raw == bomb
