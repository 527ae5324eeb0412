"""``pipeline encode`` and ``pipeline decode``: see what is inside a stream record, both ways.

Record lines are JSON objects ``{"partitionKey", "explicitHashKey", "data"}`` with base64 ``data``,
the shape ``PutRecords`` takes. ``decode`` also reads a whole Lambda Kinesis event or Firehose event.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import itertools
import sys
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import orjson

from pipeline.codecs import DecodeResult, RecordFormat, decode_record, encode_event, encode_records
from pipeline.exceptions import DecodeError, RecordTooLargeError
from pipeline.partitioning import ShardMap
from tools.cli.args import positive_int
from tools.cli.io import open_input, read_events

__all__ = ["configure", "run"]

_CHUNK = 50_000


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("input", nargs="?", default="-", help="input file (default: standard input)")
    if name == "encode":
        parser.add_argument(
            "--format",
            choices=[f.value for f in RecordFormat],
            default=RecordFormat.JSON.value,
            help="record format (default: json). See README 'Choosing a record format'.",
        )
        parser.add_argument(
            "--shards",
            type=positive_int,
            default=1,
            help="shards of the target stream, for shard-aware batching (default 1)",
        )
        parser.epilog = "Input: NDJSON events. Output: one JSON record per line. Bad input lines go to stderr (exit 1)."
    else:
        parser.epilog = (
            "Input: record lines as 'pipeline encode' writes them, a Lambda Kinesis event JSON, or a Firehose "
            "transformation event JSON. Output: NDJSON events on stdout; each bad line, record or KPL sub-record "
            "as one JSON line on stderr with its reason and base64 raw bytes, and decoding goes on to the end "
            "(exit 1 if any). Pipes and /dev/stdin work as the input file."
        )


def run(args: argparse.Namespace) -> int:
    return _encode(args) if args.command == "encode" else _decode(args)


# --------------------------------------------------------------------------- encode


def _encode(args: argparse.Namespace) -> int:
    errors: list[str] = []
    out = sys.stdout.buffer
    shard_map = ShardMap.uniform(args.shards)
    fmt = RecordFormat(args.format)
    with open_input(args.input) as stream:
        events = read_events(stream, errors)
        while chunk := list(itertools.islice(events, _CHUNK)):
            try:
                records = encode_records(chunk, fmt, shard_map)
            except RecordTooLargeError as exc:
                errors.append(str(exc))
                continue
            for record in records:
                line: dict[str, Any] = {"partitionKey": record.partition_key}
                if record.explicit_hash_key is not None:
                    line["explicitHashKey"] = record.explicit_hash_key
                line["data"] = base64.b64encode(record.data).decode()
                out.write(orjson.dumps(line) + b"\n")
    for error in errors:
        print(f"pipeline encode: {error}", file=sys.stderr)
    return 1 if errors else 0


# --------------------------------------------------------------------------- decode


def _b64(value: object) -> bytes:
    if isinstance(value, bytes):
        raise ValueError("the line is not JSON")
    if not isinstance(value, str):
        raise ValueError("data must be a base64 string")
    return base64.b64decode(value, validate=True)


def _lambda_records(doc: dict[str, Any]) -> Iterator[tuple[object, str, str]]:
    for record in doc["Records"]:
        kinesis = record.get("kinesis", {})
        shard = str(record.get("eventID", "")).split(":", 1)[0]
        yield kinesis.get("data"), shard, str(kinesis.get("sequenceNumber", ""))


def _firehose_records(doc: dict[str, Any]) -> Iterator[tuple[object, str, str]]:
    for record in doc["records"]:
        meta = record.get("kinesisRecordMetadata") or {}
        yield record.get("data"), str(meta.get("shardId", "")), str(meta.get("sequenceNumber", ""))


def _line_records(lines: Iterable[bytes]) -> Iterator[tuple[object, str, str]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield line.rstrip(b"\r\n"), "", f"line {number}"  # raw bytes: reported as not a record line
            continue
        data = doc.get("data") if isinstance(doc, dict) else None
        yield data, str(doc.get("shardId", "")) if isinstance(doc, dict) else "", f"line {number}"


def _records(stream: BinaryIO) -> Iterator[tuple[object, str, str]]:
    """(base64 data, shard id, sequence number or line label) for each input record, whatever the shape.

    A record line that is not JSON comes back with its raw bytes as ``data``, to be reported, not
    dropped, and the lines after it are still read. Record lines stream; a Lambda or Firehose event
    (one JSON document, often over several lines) is read whole.
    """
    first = stream.readline()
    while first and not first.strip():
        first = stream.readline()
    if not first:
        return
    try:
        doc = orjson.loads(first)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and "data" in doc:
        yield from _line_records(itertools.chain([first], stream))
        return
    whole = first + stream.read()
    try:
        doc = orjson.loads(whole)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        yield from _lambda_records(doc)
    elif isinstance(doc, dict) and isinstance(doc.get("records"), list):
        yield from _firehose_records(doc)
    else:  # record lines after all, some of them bad: each is reported, none is dropped
        yield from _line_records(whole.splitlines(keepends=True))


def _error_line(error: DecodeError) -> bytes:
    return orjson.dumps(
        {
            "reason": error.reason,
            "shard_id": error.shard_id,
            "sequence_number": error.sequence_number,
            "sub_sequence_number": error.sub_sequence_number,
            "line": error.line,
            "raw": base64.b64encode(error.raw).decode(),
        }
    )


def _decode(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    err = sys.stderr.buffer
    bad = 0
    with open_input(args.input) as stream:
        for data, shard, seq in _records(stream):
            results: list[DecodeResult]
            try:
                raw = _b64(data)
            except (ValueError, binascii.Error) as exc:
                kept = data if isinstance(data, bytes) else orjson.dumps(data)  # what the line held, whole
                results = [DecodeError(f"not a record: {exc}", kept, shard_id=shard, sequence_number=seq)]
            else:
                results = decode_record(raw, shard, seq)
            for result in results:
                if isinstance(result, DecodeError):
                    bad += 1
                    err.write(_error_line(result) + b"\n")
                else:
                    out.write(encode_event(result.event) + b"\n")
    err.flush()
    return 1 if bad else 0
