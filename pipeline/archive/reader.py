"""Reading the archive back: list objects by type and date, stream their events in event-time order.

The one reader for ``pipeline archive``, the analytics job and load replays.

Guarantees:

- :func:`list_objects` lists only what can match: one listing per event type, starting at the
  ``since`` date partition and stopping after the ``until`` one. Objects come ordered by (date, type,
  key); keys that are not event objects (errors, strays) are never returned.
- :func:`read_events` streams each object: gzip is inflated incrementally (one member after another,
  as Firehose and ``cat``-ed objects have), plain NDJSON is read as is; at most ``run_events`` events
  are held in memory at once. Events come out **in event-time order within each object** (ties keep
  the object's order); longer objects are sorted in runs spilled to temporary files and merged.
- ``since``/``until`` select events by event time, ``since <= timestamp < until`` (aware datetimes;
  a naive one is refused).
- A line that is not an event raises :class:`~pipeline.archive.errors.ArchiveFormatError` naming the
  key and the line: the archive holds only what the transform wrote, so anything else is damage, and
  it is reported rather than skipped.
- The archive is at least once (Firehose and Kinesis redeliver on failures): an event may appear
  twice; deduplicate on ``event_id`` where it matters.
"""

from __future__ import annotations

import heapq
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any, Final

from pipeline.archive.errors import ArchiveFormatError
from pipeline.archive.layout import EVENTS_ROOT, Partition, parse_key
from pipeline.codecs.formats import GZIP_MAGIC
from pipeline.events import Event, EventType, decode_event
from pipeline.events.limits import LATEST_EVENT_TIME
from pipeline.exceptions import EventValidationError

__all__ = ["ArchiveObject", "iter_lines", "list_objects", "read_archived", "read_events", "read_object"]

_CHUNK: Final = 256 * 1024
_MAX_LINE: Final = 16 * 1024 * 1024
_RUN_EVENTS: Final = 100_000
_EPOCH: Final = datetime(1, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class ArchiveObject:
    key: str
    partition: Partition
    size: int
    last_modified: datetime

    @property
    def event_type(self) -> EventType:
        return self.partition.event_type

    @property
    def dt(self) -> date:
        return self.partition.dt


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC): {value!r}")
    return value


def list_objects(
    s3: Any,
    bucket: str,
    *,
    event_type: EventType | str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ArchiveObject]:
    """The event objects of ``bucket`` that may hold events of ``event_type`` (all types when ``None``)
    with ``since <= timestamp < until``; ordered by (date, type, key)."""
    since, until = _aware("since", since), _aware("until", until)
    types = [EventType(event_type)] if event_type is not None else list(EventType)
    first = since.astimezone(UTC).date() if since else None
    last = (until.astimezone(UTC) - _MICRO).date() if until else None
    found: list[ArchiveObject] = []
    paginator = s3.get_paginator("list_objects_v2")
    for kind in types:
        root = f"{EVENTS_ROOT}event_type={kind.value}/dt="
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": root}
        if first is not None:
            kwargs["StartAfter"] = f"{root}{(first - timedelta(days=1)).isoformat()}/\uffff"
        for page in paginator.paginate(**kwargs):
            done = False
            for item in page.get("Contents", []):
                parsed = parse_key(item["Key"])
                if parsed is None:
                    continue
                if last is not None and parsed.partition.dt > last:
                    done = True
                    break
                if first is not None and parsed.partition.dt < first:
                    continue
                found.append(ArchiveObject(item["Key"], parsed.partition, int(item["Size"]), item["LastModified"]))
            if done:
                break
    found.sort(key=lambda o: (o.partition, o.key))
    return found


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-empty lines of a stream of bytes, inflated on the fly when it starts as gzip.

    Memory: one chunk, its inflated output (bounded by zlib's ``max_length``) and one line. Raises
    :class:`ArchiveFormatError` for corrupt or truncated gzip, or a line over 16 MiB.
    """
    stream = iter(chunks)
    head = b""
    for chunk in stream:
        head += chunk
        if len(head) >= 2:
            break
    rest: Iterator[bytes] = _chain(head, stream)
    pieces = _inflate(rest) if head[:2] == GZIP_MAGIC else rest
    pending = b""
    for piece in pieces:
        pending += piece
        if b"\n" not in piece:
            if len(pending) > _MAX_LINE:
                raise ArchiveFormatError(f"a line longer than {_MAX_LINE} bytes")
            continue
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def _chain(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


def _inflate(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Inflate gzip members one after another; raise :class:`ArchiveFormatError` if one is corrupt or cut."""
    inflater = zlib.decompressobj(31)
    fed = False  # the current member has had input
    try:
        for chunk in chunks:
            data = chunk
            while data:
                fed = True
                out = inflater.decompress(data, _CHUNK)
                if out:
                    yield out
                while inflater.unconsumed_tail and not inflater.eof:
                    out = inflater.decompress(inflater.unconsumed_tail, _CHUNK)
                    if out:
                        yield out
                if inflater.eof:  # a member ends; another may follow
                    data = inflater.unused_data
                    inflater, fed = zlib.decompressobj(31), False
                else:
                    data = b""
    except zlib.error as exc:
        raise ArchiveFormatError(f"corrupt gzip data: {exc}") from None
    if fed:
        raise ArchiveFormatError("truncated gzip data (no end of stream)")


def _sort_key(event: Event) -> int:
    return (event.timestamp - _EPOCH) // _MICRO


def _parse(line: bytes, key: str, number: int) -> Event:
    try:
        return decode_event(line, LATEST_EVENT_TIME)  # valid when it arrived: no horizon when read back
    except EventValidationError as exc:
        raise ArchiveFormatError(f"s3 object {key}, line {number}: not an event: {exc}") from exc


def _in_range(event: Event, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or event.timestamp >= since) and (until is None or event.timestamp < until)


def _spill(run: list[tuple[int, int, Event, bytes]]) -> IO[bytes]:
    run.sort(key=lambda item: (item[0], item[1]))
    spill = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the merge that reads it back
    for sort_key, _, _, line in run:
        spill.write(b"%018d %s\n" % (sort_key, line))
    spill.seek(0)
    return spill


def _read_spill(spill: IO[bytes], key: str) -> Iterator[tuple[int, Event, bytes]]:
    with spill:
        for number, raw in enumerate(spill):
            line = raw[19:-1]
            yield int(raw[:18]), _parse(line, key, number), line


def read_object(
    s3: Any,
    bucket: str,
    key: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    run_events: int = _RUN_EVENTS,
) -> Iterator[Event]:
    """The events of one object in event-time order (ties in object order); see the module docstring."""
    for event, _ in _entries(s3, bucket, key, since, until, run_events):
        yield event


def _entries(
    s3: Any, bucket: str, key: str, since: datetime | None, until: datetime | None, run_events: int
) -> Iterator[tuple[Event, bytes]]:
    """Each event of one object with its line as archived, in event-time order (ties in object order)."""
    since, until = _aware("since", since), _aware("until", until)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    run: list[tuple[int, int, Event, bytes]] = []
    spills: list[IO[bytes]] = []
    try:
        for number, line in enumerate(iter_lines(body.iter_chunks(_CHUNK))):
            event = _parse(line, key, number)
            if not _in_range(event, since, until):
                continue
            run.append((_sort_key(event), number, event, line))
            if len(run) >= run_events:
                spills.append(_spill(run))
                run = []
    finally:
        body.close()
    run.sort(key=lambda item: (item[0], item[1]))
    if not spills:
        for _, _, event, line in run:
            yield event, line
        return
    runs: list[Iterator[tuple[int, Event, bytes]]] = [_read_spill(s, key) for s in spills]
    runs.append(((k, e, line) for k, _, e, line in run))
    for _, event, line in heapq.merge(*runs, key=lambda item: item[0]):
        yield event, line


def read_events(
    s3: Any,
    bucket: str,
    *,
    event_type: EventType | str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    run_events: int = _RUN_EVENTS,
) -> Iterator[Event]:
    """Every archived event of ``event_type`` (all when ``None``) with ``since <= timestamp < until``:
    object after object in :func:`list_objects` order, each in event-time order."""
    for event, _ in read_archived(s3, bucket, event_type=event_type, since=since, until=until, run_events=run_events):
        yield event


def read_archived(
    s3: Any,
    bucket: str,
    *,
    event_type: EventType | str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    run_events: int = _RUN_EVENTS,
) -> Iterator[tuple[Event, bytes]]:
    """:func:`read_events` with each event's line as archived (the JSON its producer sent, unknown
    fields included): what ``pipeline archive cat`` prints and load replays republish."""
    for item in list_objects(s3, bucket, event_type=event_type, since=since, until=until):
        yield from _entries(s3, bucket, item.key, since, until, run_events)
