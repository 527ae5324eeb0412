"""The stream's vocabulary, in one place: a record, a position inside a shard, and Lambda's event shape.

Every reader speaks it: the consumer's processor, the local event source mapping, the local Firehose,
the change-data-capture poller and the benchmarks.

- :class:`StreamRecord` is one Kinesis record as a reader receives it (``arrival`` is Kinesis'
  ``ApproximateArrivalTimestamp``, aware UTC).
- A **position** orders everything inside one shard: (sequence number, KPL sub-sequence number, NDJSON
  line). :func:`encode_position` writes it as a string that sorts the way the stream does, so it can
  be stored on items as a watermark and compared in a DynamoDB condition: sequence numbers are decimal
  strings of up to 129 digits (too long for a DynamoDB number), hence ``LLL<digits>.SSSSSS.IIIIIII``
  with ``LLL`` the digit count (fewer digits sort first; equal lengths compare digit by digit).
- :func:`records_of` and :func:`lambda_event` convert from and to the event Lambda passes for a batch
  (``eventID`` is ``shardId:sequenceNumber``; ``data`` is base64; arrival in epoch seconds).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "StreamRecord",
    "encode_position",
    "first_position_of",
    "from_get_records",
    "lambda_event",
    "records_of",
]


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One Kinesis record. Immutable."""

    shard_id: str
    sequence_number: str
    data: bytes
    arrival: datetime
    """``ApproximateArrivalTimestamp``, aware UTC."""
    partition_key: str = ""

    @property
    def position(self) -> str:
        """The position before any event of the record (see :func:`first_position_of`)."""
        return first_position_of(self.sequence_number)


def encode_position(sequence_number: str, sub_sequence_number: int | None = None, line: int = 0) -> str:
    """The sortable string of a position; ``sub_sequence_number=None`` (not an aggregate) sorts first.

    Raises ``ValueError`` for a sequence number that is not one (digits only, at most 999 of them).
    """
    digits = sequence_number.lstrip("0") or "0"
    if not digits.isdigit() or len(digits) > 999:
        raise ValueError(f"not a Kinesis sequence number: {sequence_number[:40]!r}")
    sub = 0 if sub_sequence_number is None else sub_sequence_number + 1
    return f"{len(digits):03d}{digits}.{sub:06d}.{line:07d}"


def first_position_of(sequence_number: str) -> str:
    """The smallest position inside the record ``sequence_number`` (before any of its events)."""
    return encode_position(sequence_number, None, 0)


def records_of(event: Mapping[str, Any]) -> list[StreamRecord]:
    """The records of a Lambda Kinesis event, in the order Lambda delivered them (sequence order)."""
    out = []
    for record in event.get("Records") or ():
        kinesis = record["kinesis"]
        out.append(
            StreamRecord(
                str(record["eventID"]).split(":", 1)[0],
                kinesis["sequenceNumber"],
                base64.b64decode(kinesis["data"]),
                datetime.fromtimestamp(float(kinesis["approximateArrivalTimestamp"]), UTC),
                kinesis.get("partitionKey", ""),
            )
        )
    return out


def lambda_event(records: Sequence[StreamRecord], stream_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """The event Lambda passes for a Kinesis batch of ``records``."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64.b64encode(r.data).decode(),
                    "approximateArrivalTimestamp": r.arrival.timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{r.shard_id}:{r.sequence_number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::000000000000:role/consumer",
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
            for r in records
        ]
    }


def from_get_records(shard_id: str, record: Mapping[str, Any]) -> StreamRecord:
    """From one entry of a ``GetRecords`` response (its arrival a datetime, or epoch seconds)."""
    arrival = record["ApproximateArrivalTimestamp"]
    when = arrival.astimezone(UTC) if isinstance(arrival, datetime) else datetime.fromtimestamp(float(arrival), UTC)
    return StreamRecord(shard_id, record["SequenceNumber"], record["Data"], when, record.get("PartitionKey", ""))
