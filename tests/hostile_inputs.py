"""Hostile records, and a child process that pushes one through the consumer or the Firehose transform.

``python -m tests.hostile_inputs CASE TARGET`` builds the hostile record CASE between two valid events,
runs it through TARGET (``consumer``: the Lambda handler on in-memory stores; ``transform``: the
Firehose transform on an in-memory object writer) and prints one JSON line of what happened, with the
process's own peak resident memory (``VmHWM``, imports included). Run in a child so that the figure is
this input's alone. Inputs are built without ever holding what they expand to.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

__all__ = ["CASES", "TARGETS", "hostile_record", "peak_mib", "run"]

_MIB = 2**20
ARRIVAL = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_SHARD = "shardId-000000000000"
_KPL_MAGIC = b"\xf3\x89\x9a\xc2"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _kpl(body: bytes) -> bytes:
    return _KPL_MAGIC + body + hashlib.md5(body).digest()  # noqa: S324 - the format's checksum


def gzip_bomb() -> bytes:
    """100 MiB of zeros, gzipped (about 100 KB), compressed a MiB at a time."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(_MIB)
    return b"".join(compressor.compress(chunk) for _ in range(100)) + compressor.flush()


def kpl_claiming_a_billion() -> bytes:
    """A KPL aggregate (valid magic and MD5) whose one sub-record says it is 10^9 bytes long."""
    return _kpl(b"\x0a\x01k" + b"\x1a" + _varint(10**9) + b"\x08\x00\x1a\x00")


def kpl_packed() -> bytes:
    """A 10 MiB KPL aggregate packed with 5,242,878 empty sub-records (2 bytes each, valid MD5)."""
    return _kpl(b"\x0a\x01k" + b"\x1a\x00" * ((10 * _MIB - 24) // 2))


def deep_json() -> bytes:
    """A 1 MiB line: an event's first fields, then ``data`` nested about 175,000 objects deep."""
    head = b'{"event_id":"deep","event_type":"product_view","data":'
    depth = (_MIB - len(head) - 3) // 6
    return head + b'{"a":' * depth + b"1" + b"}" * depth + b"}\n"


def big_record() -> bytes:
    """A 10 MiB record (a stream whose record limit was raised): one event with a 10 MiB unknown field."""
    head = _event(b"big").removesuffix(b"}")
    return head + b',"pad":"' + b"x" * (10 * _MIB - len(head) - 10) + b'"}'


CASES: dict[str, Callable[[], bytes]] = {
    "gzip-bomb-100MiB": gzip_bomb,
    "kpl-claims-1e9": kpl_claiming_a_billion,
    "kpl-packed-10MiB": kpl_packed,
    "deep-json-1MiB": deep_json,
    "record-10MiB": big_record,
}


def hostile_record(case: str) -> bytes:
    return CASES[case]()


def _event(event_id: bytes) -> bytes:
    return (
        b'{"event_id":"' + event_id + b'","event_type":"product_view","schema_version":1,'
        b'"timestamp":"2026-11-20T11:59:00Z","source":"hostile-test","data":{"product_id":"p-1"}}'
    )


def peak_mib() -> float:
    """This process's peak resident memory (``VmHWM``), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _consumer(hostile: bytes) -> dict[str, Any]:
    from pipeline.stream import StreamRecord, lambda_event
    from tests.consumer_harness import memory_consumer, stream_arn

    datas = [_event(b"before"), hostile, _event(b"after")]
    records = [
        StreamRecord(_SHARD, f"{i + 1:030d}", data, ARRIVAL + timedelta(seconds=i), "key")
        for i, data in enumerate(datas)
    ]
    consumer = memory_consumer()
    event = lambda_event(records, stream_arn)
    del records, datas
    response = consumer.handler(event, None)
    rows = consumer.sink.rows
    views = [item.get("view_count") for item in consumer.store.tables().get("product_metrics", {}).values()]
    return {
        "bad_rows": len(rows),
        "raw_kept": len(rows) == 1 and rows[0].raw == hostile,
        "reason": rows[0].reason if rows else "",
        "batch_went_on": response == {"batchItemFailures": []} and views == [2],
    }


def _transform(hostile: bytes) -> dict[str, Any]:
    from pipeline.archive.transform import FirehoseTransform
    from tools.memory import MemoryObjectWriter

    arrival_ms = int(ARRIVAL.timestamp() * 1000)
    datas = [_event(b"before"), hostile, _event(b"after")]
    event = {
        "records": [
            {
                "recordId": f"r{i}",
                "approximateArrivalTimestamp": arrival_ms,
                "data": base64.b64encode(data).decode(),
                "kinesisRecordMetadata": {"shardId": _SHARD, "sequenceNumber": f"{i + 1:030d}"},
            }
            for i, data in enumerate(datas)
        ]
    }
    del datas
    writer = MemoryObjectWriter()
    result = FirehoseTransform(writer).transform(event)
    entries = result.response["records"]
    bad = [e for e in entries if e["result"] != "Ok"]
    raw_kept = False
    if len(bad) == 1 and bad[0]["result"] == "ProcessingFailed":  # Firehose writes the echoed bytes
        raw_kept = base64.b64decode(bad[0]["data"]) == hostile and not writer.objects
    elif len(bad) == 1 and bad[0]["result"] == "Dropped" and len(writer.objects) == 1:  # too big to echo
        (body,) = writer.objects.values()
        document = orjson.loads(zlib.decompress(body, 31))
        raw_kept = base64.b64decode(document["rawData"]) == hostile
    return {
        "bad_rows": len(bad),
        "raw_kept": raw_kept,
        "reason": "; ".join(result.stats.reasons),
        "batch_went_on": [e["recordId"] for e in entries if e["result"] == "Ok"] == ["r0", "r2"],
    }


TARGETS: dict[str, Callable[[bytes], dict[str, Any]]] = {"consumer": _consumer, "transform": _transform}


def run(case: str, target: str) -> dict[str, Any]:
    """Build ``case``, push it through ``target``; what happened, with the seconds and peak memory."""
    hostile = hostile_record(case)
    started = time.perf_counter()
    report = TARGETS[target](hostile)
    report |= {"case": case, "target": target, "input_bytes": len(hostile)}
    report |= {"seconds": round(time.perf_counter() - started, 3), "peak_mib": round(peak_mib(), 1)}
    return report


if __name__ == "__main__":
    sys.stdout.write(orjson.dumps(run(sys.argv[1], sys.argv[2])).decode() + "\n")
