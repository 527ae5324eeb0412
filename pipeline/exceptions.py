"""Every error the pipeline raises on purpose, under one root.

Callers catch :class:`PipelineError` to handle anything of ours, or a leaf to handle one case.
``ClientError`` from boto3 is translated at the boundary (``raise ... from exc``); nothing else
leaks raw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.events import Event

__all__ = [
    "ConfigurationError",
    "DecodeError",
    "DeliveryError",
    "EmulatorError",
    "EventValidationError",
    "MetricWriteError",
    "PipelineError",
    "RecordTooLargeError",
    "TransientError",
]


class PipelineError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigurationError(PipelineError):
    """A setting is missing or malformed; the message says which one and how to fix it."""


class EmulatorError(PipelineError):
    """The embedded emulator did not start, answer or stop; the message names its log file."""


class EventValidationError(PipelineError):
    """An event does not match the schema: ``field`` names the dotted path, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DecodeError(PipelineError):
    """Bytes that cannot become an event. Keeps the exact raw bytes, the reason and the position.

    ``raw`` is the smallest unit that failed: a whole Kinesis record when the record itself is bad
    (bad gzip, bad KPL MD5), a KPL sub-record or an NDJSON line when only that part is bad.
    ``sub_sequence_number`` is set for KPL sub-records, ``line`` for the NDJSON line (from 0) inside a payload.
    """

    def __init__(
        self,
        reason: str,
        raw: bytes,
        *,
        shard_id: str = "",
        sequence_number: str = "",
        sub_sequence_number: int | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw
        self.shard_id = shard_id
        self.sequence_number = sequence_number
        self.sub_sequence_number = sub_sequence_number
        self.line = line

    def __repr__(self) -> str:
        where = f"{self.shard_id}:{self.sequence_number}" if self.sequence_number else "?"
        return f"DecodeError({self.reason!r}, at={where}, sub={self.sub_sequence_number}, raw={len(self.raw)}B)"


class TransientError(PipelineError):
    """An AWS call failed in a way a later retry may fix (throttling, timeouts, 5xx) and retries ran out."""


class MetricWriteError(PipelineError):
    """A write the store refused for a reason retrying cannot fix (a bug: validation, bad types)."""


class RecordTooLargeError(PipelineError):
    """One event alone encodes past Kinesis' 1 MiB record limit and can never be sent."""


class DeliveryError(PipelineError):
    """Some events were not written to Kinesis; ``undelivered`` lists every one of them.

    ``reasons`` maps the event id of each undelivered event to why: an event readers would refuse
    (invalid, or past the size a reader accepts) is refused by the producer itself, before anything
    is sent; the others ran out of retries. Events not listed were written, and never resent by the
    producer after Kinesis reported them written; only a connection lost after Kinesis accepted a
    request can make a resend duplicate one.
    """

    def __init__(self, message: str, undelivered: Sequence[Event], reasons: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{message} ({len(undelivered)} events not delivered)")
        self.undelivered = list(undelivered)
        self.reasons: dict[str, str] = {e.event_id: message for e in undelivered}
        self.reasons.update(reasons or {})
