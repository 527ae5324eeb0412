"""The Firehose transform over arbitrary records: the contract holds whatever the bytes.

Records are random bytes, valid records of every format, and those mutated (truncated, bit-flipped,
spliced), some not even base64. Every ``recordId`` comes back exactly once, in order, as ``Ok`` (data
and partition keys), ``ProcessingFailed`` (the input echoed) or ``Dropped`` (only when the transform
wrote the record itself); nothing raises.
"""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.archive.transform import FirehoseTransform
from pipeline.codecs import RecordFormat, encode_records
from tests.strategies import events
from tools.memory import MemoryObjectWriter

_ARRIVAL_MS = 1_795_500_000_000


@st.composite
def record_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "valid", "truncated", "flipped", "spliced"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    batch = draw(st.lists(events(), min_size=1, max_size=4))
    data = encode_records(batch, draw(st.sampled_from(list(RecordFormat))))[0].data
    if kind == "truncated":
        return data[: draw(st.integers(0, len(data)))]
    if kind == "flipped":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if kind == "spliced":
        return data + draw(st.binary(min_size=1, max_size=40))
    return data


@st.composite
def firehose_records(draw: st.DrawFn, index: int) -> dict[str, Any]:
    data = draw(record_bytes())
    field = draw(st.sampled_from(["base64", "base64", "base64", "not-base64"]))
    encoded = base64.b64encode(data).decode() if field == "base64" else "%%" + data.hex()
    record: dict[str, Any] = {"recordId": f"r{index}", "approximateArrivalTimestamp": _ARRIVAL_MS, "data": encoded}
    if draw(st.booleans()):
        record["kinesisRecordMetadata"] = {"shardId": "shardId-000000000001", "sequenceNumber": f"{index + 1:030d}"}
    return record


@st.composite
def firehose_events(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(0, 6))
    return {"records": [draw(firehose_records(i)) for i in range(count)]}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=firehose_events(), budget=st.sampled_from([6_000_000, 2_000]))
def test_every_record_is_answered_once_whatever_its_bytes(event: dict[str, Any], budget: int) -> None:
    writer = MemoryObjectWriter()
    result = FirehoseTransform(writer, max_response_bytes=budget).transform(event)
    entries = result.response["records"]
    assert [e["recordId"] for e in entries] == [r["recordId"] for r in event["records"]]
    for entry, record in zip(entries, event["records"], strict=True):
        assert entry["result"] in {"Ok", "ProcessingFailed", "Dropped"}
        if entry["result"] == "Ok":
            assert set(entry["metadata"]["partitionKeys"]) == {"event_type", "dt"}
            assert base64.b64decode(entry["data"], validate=True)
        elif entry["result"] == "ProcessingFailed":
            assert entry["data"] == record["data"]
        else:
            assert writer.objects
    stats = result.stats
    assert stats.ok + stats.failed + stats.dropped == len(entries)
