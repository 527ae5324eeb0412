"""The archive's key layout, in one place: partition prefixes, error prefixes and object names.

Every writer (Firehose in AWS through the template's prefixes, the local Firehose, the transform's
own writes of split records) and every reader builds and parses keys here:

    events/event_type=<type>/dt=<YYYY-MM-DD>/<name>          events, gzipped NDJSON
    errors/<error-output-type>/<YYYY>/<MM>/<dd>/<name>       records that never became events

``dt`` is the event's date in UTC (event time, not arrival time). :data:`FIREHOSE_PREFIX` and
:data:`FIREHOSE_ERROR_PREFIX` are the template's ``Prefix`` and ``ErrorOutputPrefix`` (a test checks
they are equal), and :func:`evaluate_prefix` evaluates them the way Firehose does, for the local path.

Object names:

- Firehose's, ``<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>.gz``; locally the uuid is derived from
  the object's first record, so writing the same input again writes the same keys (idempotent).
- The transform's own objects for the events of a record that Firehose cannot deliver itself (other
  partitions of a mixed batch, what does not fit the response): ``split-<shard>-<sequence>-<sub>.gz``
  (``split-<recordId>.gz`` when Firehose gives no Kinesis metadata). One record position, one name:
  a retried invocation overwrites the same object with the same bytes.

Parsing is lenient about what follows ``dt=<date>/`` (a name, or sub-folders), so objects stay
readable if Firehose ever appends its default ``yyyy/MM/dd/HH/`` to the evaluated prefix.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from pipeline.events import Event, EventType

__all__ = [
    "ERRORS_ROOT",
    "EVENTS_ROOT",
    "FIREHOSE_ERROR_PREFIX",
    "FIREHOSE_PREFIX",
    "PARTITION_KEYS",
    "PROCESSING_FAILED",
    "ArchiveKey",
    "Partition",
    "error_prefix",
    "evaluate_prefix",
    "firehose_object_name",
    "parse_key",
    "split_object_name",
]

EVENTS_ROOT: Final = "events/"
ERRORS_ROOT: Final = "errors/"
PARTITION_KEYS: Final = ("event_type", "dt")
FIREHOSE_PREFIX: Final = "events/event_type=!{partitionKeyFromLambda:event_type}/dt=!{partitionKeyFromLambda:dt}/"
"""The delivery stream's ``Prefix`` (dynamic partitioning on the keys the transform returns)."""
FIREHOSE_ERROR_PREFIX: Final = "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
"""The delivery stream's ``ErrorOutputPrefix``; the timestamp is the oldest record's arrival (UTC)."""
PROCESSING_FAILED: Final = "processing-failed"
"""Firehose's error-output-type for records the transform reported ``ProcessingFailed`` (or never answered)."""

_EXPRESSION = re.compile(r"!\{([A-Za-z]+):([^}]*)\}")
_KEY = re.compile(r"events/event_type=([a-z_]+)/dt=(\d{4}-\d{2}-\d{2})/(.+)")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")
_JAVA_FIELDS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
_JAVA_TOKEN = re.compile(r"yyyy|MM|dd|HH|mm|ss|'[^']*'|[A-Za-z]+")
_NAMESPACE = uuid.UUID("8b0f6f52-4a52-4c8e-9d36-0c5bb4d8e2a1")  # names the local Firehose's object uuids


@dataclass(frozen=True, slots=True, order=True)
class Partition:
    """Where an event is archived: its type and its UTC date. Ordered by date, then type."""

    dt: date
    event_type: EventType

    @classmethod
    def of(cls, event: Event) -> Partition:
        return cls(event.timestamp.astimezone(UTC).date(), event.event_type)

    @classmethod
    def from_keys(cls, keys: Mapping[str, str]) -> Partition:
        """From Firehose partition keys; raises ``ValueError`` if one is missing or malformed."""
        return cls(date.fromisoformat(keys["dt"]), EventType(keys["event_type"]))

    def keys(self) -> dict[str, str]:
        """The ``metadata.partitionKeys`` the transform returns for Firehose's dynamic partitioning."""
        return {"event_type": self.event_type.value, "dt": self.dt.isoformat()}

    @property
    def prefix(self) -> str:
        """``events/event_type=<type>/dt=<date>/``: :data:`FIREHOSE_PREFIX` evaluated with :meth:`keys`."""
        return f"{EVENTS_ROOT}event_type={self.event_type.value}/dt={self.dt.isoformat()}/"


@dataclass(frozen=True, slots=True)
class ArchiveKey:
    """A parsed event object key."""

    partition: Partition
    name: str


def parse_key(key: str) -> ArchiveKey | None:
    """The partition and name of an event object's key; ``None`` for any other key (errors, strays)."""
    match = _KEY.fullmatch(key)
    if match is None:
        return None
    try:
        partition = Partition(date.fromisoformat(match[2]), EventType(match[1]))
    except ValueError:
        return None
    return ArchiveKey(partition, match[3])


def _java_time(pattern: str, when: datetime) -> str:
    """The subset of Java's DateTimeFormatter the layout uses: yyyy MM dd HH mm ss and 'quoted' text."""

    def field(match: re.Match[str]) -> str:
        token = match[0]
        if token.startswith("'"):
            return token[1:-1]
        if token in _JAVA_FIELDS:
            return when.strftime(_JAVA_FIELDS[token])
        raise ValueError(f"unsupported timestamp pattern {token!r} in {pattern!r}")

    return _JAVA_TOKEN.sub(field, pattern)


def evaluate_prefix(
    template: str,
    arrival: datetime,
    partition_keys: Mapping[str, str] | None = None,
    *,
    error_output_type: str | None = None,
) -> str:
    """Evaluate a Firehose ``Prefix``/``ErrorOutputPrefix`` expression (``timestamp``, ``firehose``,
    ``partitionKeyFromLambda``) as Firehose does. ``arrival`` must be aware; it is taken in UTC.

    Raises ``ValueError`` for an expression it cannot evaluate (an absent partition key, an unknown
    namespace): Firehose sends such records to the error prefix instead.
    """
    when = arrival.astimezone(UTC)

    def expand(match: re.Match[str]) -> str:
        namespace, value = match[1], match[2]
        if namespace == "timestamp":
            return _java_time(value, when)
        if namespace == "firehose" and value == "error-output-type" and error_output_type:
            return error_output_type
        if namespace == "partitionKeyFromLambda" and partition_keys is not None and value in partition_keys:
            return partition_keys[value]
        raise ValueError(f"cannot evaluate !{{{namespace}:{value}}}")

    return _EXPRESSION.sub(expand, template)


def error_prefix(arrival: datetime, error_output_type: str = PROCESSING_FAILED) -> str:
    """:data:`FIREHOSE_ERROR_PREFIX` evaluated: ``errors/<type>/<yyyy>/<MM>/<dd>/``."""
    return evaluate_prefix(FIREHOSE_ERROR_PREFIX, arrival, error_output_type=error_output_type)


def firehose_object_name(stream_name: str, oldest_arrival: datetime, identity: str, *, version: int = 1) -> str:
    """Firehose's object name for a GZIP object, its uuid derived from ``identity`` (deterministic)."""
    stamp = oldest_arrival.astimezone(UTC).strftime("%Y-%m-%d-%H-%M-%S")
    return f"{stream_name}-{version}-{stamp}-{uuid.uuid5(_NAMESPACE, identity)}.gz"


def split_object_name(record_id: str, shard_id: str = "", sequence_number: str = "", sub: int | None = None) -> str:
    """The name of the transform's own object for one Firehose record: its Kinesis position when known."""
    if shard_id and sequence_number:
        position = f"{shard_id}-{sequence_number}-{'x' if sub is None else sub}"
    else:
        position = record_id
    return f"split-{_UNSAFE.sub('_', position)}.gz"
