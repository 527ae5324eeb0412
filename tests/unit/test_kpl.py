"""KPL aggregation against records made by the real Java KPL, and its failure modes."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.codecs import KPL_MAGIC, UserRecord, aggregate, deaggregate
from pipeline.codecs.kpl import AggregateBuilder, subrecord_payloads
from pipeline.exceptions import DecodeError

pytestmark = pytest.mark.library  # the embeddable library: ./dev test also runs it on 3.11 and 3.13

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "kpl" / "real_kpl_records.json"


def _cases() -> list[Any]:
    if not FIXTURES.is_file():  # the fixtures live beside the repository, in ../shared
        pytest.fail(f"KPL fixtures missing at {FIXTURES}: clone the project next to its shared/ folder")
    return list(json.loads(FIXTURES.read_text())["cases"])


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_real_kpl_records_decode_to_their_user_records(case: dict[str, Any]) -> None:
    # GIVEN an aggregate made by the Java KPL
    data = base64.b64decode(case["record"]["kinesis"]["data"])
    # WHEN it is de-aggregated
    records = deaggregate(data)
    # THEN it yields exactly the user records the KPL was given, in order
    expected = [
        UserRecord(u["partitionKey"], u.get("explicitHashKey"), u["data"].encode()) for u in case["user_records"]
    ]
    assert records == expected


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_our_aggregator_rebuilds_the_kpl_bytes(case: dict[str, Any]) -> None:
    # GIVEN the user records of a real KPL aggregate WHEN we aggregate them THEN the bytes are identical
    data = base64.b64decode(case["record"]["kinesis"]["data"])
    rebuilt = aggregate(deaggregate(data))
    assert rebuilt == data


user_records = st.builds(
    UserRecord,
    st.text(min_size=1, max_size=20),
    st.none() | st.integers(0, 2**128 - 1).map(str),
    st.binary(max_size=300),
)


@given(st.lists(user_records, min_size=1, max_size=40))
@settings(max_examples=300)
def test_aggregate_round_trips_and_sizes_exactly(records: list[UserRecord]) -> None:
    # GIVEN any user records WHEN aggregated THEN de-aggregation returns them and the builder's size is exact
    builder = AggregateBuilder(10**8)
    for r in records:
        assert builder.try_add(r.partition_key, r.explicit_hash_key, r.data)
    data = builder.build()
    assert len(data) == builder.size
    assert deaggregate(data) == records


@given(st.lists(user_records, min_size=1, max_size=40))
@settings(max_examples=200)
def test_subrecord_payloads_are_the_user_records_data(records: list[UserRecord]) -> None:
    # GIVEN any aggregate WHEN the consumer's fast path reads it THEN it gets each user record's data, in order
    assert subrecord_payloads(aggregate(records)) == [r.data for r in records]


def _signed(body: bytes) -> bytes:
    return KPL_MAGIC + body + hashlib.md5(body).digest()  # noqa: S324 - the format's checksum


@pytest.mark.parametrize(
    ("body", "sub"),
    [
        pytest.param(b"\x0a\x01k" + b"\x1a\x04\x08\x00\x1a\x00" + b"\x1a\x04\x08\x05\x1a\x00", 1, id="key-index"),
        pytest.param(b"\x0a\x01k" + b"\x1a\x06\x08\x00\x10\x01\x1a\x00", 0, id="hash-key-index"),
    ],
)
def test_subrecord_payloads_name_the_first_record_outside_the_key_tables(body: bytes, sub: int) -> None:
    # GIVEN an aggregate whose record ``sub`` points past a key table WHEN its payloads are read
    data = _signed(body)
    with pytest.raises(DecodeError) as caught:
        subrecord_payloads(data)
    # THEN the error names that record and keeps the whole raw record
    assert f"sub-record {sub} points outside the key tables" in caught.value.reason
    assert caught.value.raw == data


def test_builder_refuses_what_would_pass_the_limit() -> None:
    # GIVEN a builder with a small budget WHEN records are added until one does not fit
    builder = AggregateBuilder(200)
    added = 0
    while builder.try_add(f"key-{added}", None, b"x" * 30):
        added += 1
    # THEN the aggregate stays within budget and holds every accepted record
    data = builder.build()
    assert len(data) <= 200
    assert len(deaggregate(data)) == added > 0


def _valid() -> bytes:
    return aggregate([UserRecord("k", None, b'{"a":1}'), UserRecord("k2", "123", b"two")])


@pytest.mark.parametrize(
    ("data", "reason_part"),
    [
        pytest.param(_valid()[:-1] + bytes([_valid()[-1] ^ 1]), "MD5", id="wrong-md5"),
        pytest.param(_valid()[:-5], "MD5", id="truncated"),
        pytest.param(
            KPL_MAGIC + b"\xff\xff\xff" + hashlib.md5(b"\xff\xff\xff").digest(),  # noqa: S324
            "protobuf",
            id="bad-protobuf-good-md5",
        ),
        pytest.param(
            KPL_MAGIC + b"\x1a\x04\x08\x05\x1a\x00" + hashlib.md5(b"\x1a\x04\x08\x05\x1a\x00").digest(),  # noqa: S324
            "key tables",
            id="index-out-of-range",
        ),
    ],
)
def test_broken_aggregates_raise_decode_error_with_raw_bytes(data: bytes, reason_part: str) -> None:
    # GIVEN a corrupted aggregate WHEN de-aggregated THEN a DecodeError keeps the whole raw record
    with pytest.raises(DecodeError) as caught:
        deaggregate(data)
    assert reason_part in caught.value.reason
    assert caught.value.raw == data


def test_importing_the_codec_leaves_sys_path_alone() -> None:
    import sys

    assert not any("aws_kinesis_agg" in p for p in sys.path)
