"""The batch processor: one Kinesis batch in, effects applied exactly once, the Lambda response out.

The failure contract (Lambda with ``ReportBatchItemFailures``): Lambda checkpoints before the
lowest sequence number the response reports and re-delivers everything from it. So the processor
reports the first record that has *any* effect not persisted, and guarantees every record before it
has *all* its effects persisted. Records after it may have had effects persisted too: the writer's
per-shard watermarks make their re-delivery harmless. This is why a transient failure anywhere stops
the batch at exactly one sequence number, instead of Powertools' ``BatchProcessor`` habit of
processing every record after a failure (which double-counts on the retry).

Only transient AWS errors stop a batch. Everything that can never succeed becomes a bad row (reason
and raw bytes) and the batch goes on: undecodable bytes, invalid events (decided by the typed
decoder, store limits included), and any event whose turn into effects fails: a plugin raising on
it, or an effect no store would take (:func:`~pipeline.metrics.limits.effect_problem`). Such an
event is taken out and the plugins run again without it, so later events never depend on it.

Timeline of one batch: decode -> dedupe -> context -> plugins -> sinks -> the lowest failed position::

    decode ─┬─ bad rows ─────────────────────────────────────────────────────────┐
            └─ first of each event id ─ resends out (dedup window) ─ context ─   │
               plugins (bad events out) ─┬─ bad rows ────────────────────────────┤ add
                                         ├─ counted event ids ──── dedup sink ───┤
                                         └─ effects ───────────── metric sink ───┘
      flush, in order: bad rows, dedup entries, metrics (a sink after a failed one is discarded)
                                         min(first position not persisted) -> the Lambda response

Every sink keeps :class:`~pipeline.sinks.Sink`'s contract; a ``deadline`` (from the invocation's
remaining time) bounds every retry, so a batch that cannot finish reports where to resume instead of
being cut by the function timeout.

Not thread-safe: one processor per Lambda container (Lambda runs one invocation at a time in it).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pipeline.codecs import DecodedEvent, decode_records
from pipeline.consumer.badrows import BadRow
from pipeline.consumer.dedup import EventDeduplicator
from pipeline.events import DEFAULT_POLICY, Event, ValidationPolicy
from pipeline.exceptions import DecodeError, TransientError
from pipeline.metrics.effects import Effect
from pipeline.metrics.limits import effect_problem
from pipeline.metrics.plan import Positioned
from pipeline.plugins.base import BatchContext, Plugin
from pipeline.retry import NO_DEADLINE, Deadline
from pipeline.sinks import Sink
from pipeline.stream import StreamRecord, encode_position, first_position_of

__all__ = ["BatchOutcome", "BatchProcessor", "ContextLoader"]


class ContextLoader(Protocol):
    def load(self, events: Sequence[Event], deadline: Deadline) -> BatchContext:
        """Read what plugins need for these events, in batch reads. Raises TransientError when it cannot."""
        ...


@dataclass(slots=True)
class BatchOutcome:
    """The result of one batch: the Lambda response and what happened, for logs and metrics."""

    failed_sequence_number: str | None
    records: int = 0
    events: int = 0
    """Events counted (first of their id in the batch, not a resend, not a bad row)."""
    duplicates: int = 0
    """Repeated event ids within the batch."""
    resends: int = 0
    """Events already counted in an earlier batch (a producer resend), within the dedup window."""
    bad_rows: int = 0
    effects: int = 0
    reason: str = ""
    bad_row_reasons: list[str] = field(default_factory=list)

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The ``ReportBatchItemFailures`` response Lambda expects."""
        if self.failed_sequence_number is None:
            return {"batchItemFailures": []}
        return {"batchItemFailures": [{"itemIdentifier": self.failed_sequence_number}]}


class BatchProcessor:
    """Decode, enrich and write one batch of records from one shard. See the module docstring.

    ``metrics`` takes the effects, ``bad_rows`` the rows, ``dedup`` the counted event ids (``None``:
    duplicates are dropped within the batch only). ``policy`` is validation's (the future horizon).
    """

    def __init__(
        self,
        plugins: Sequence[Plugin],
        metrics: Sink[Effect],
        context_loader: ContextLoader,
        bad_rows: Sink[BadRow],
        dedup: EventDeduplicator | None = None,
        *,
        policy: ValidationPolicy = DEFAULT_POLICY,
    ) -> None:
        self._plugins = tuple(plugins)
        self._metrics = metrics
        self._context = context_loader
        self._bad_rows = bad_rows
        self._dedup = dedup
        self._policy = policy

    def process(self, records: Sequence[StreamRecord], deadline: Deadline = NO_DEADLINE) -> BatchOutcome:
        """Process a batch of one shard's records in sequence order; never raises for bad input.

        Raises only for bugs and misconfiguration (which Lambda then retries as a function error).
        """
        if not records:
            return BatchOutcome(None)
        shard_id = records[0].shard_id
        outcome = BatchOutcome(None, records=len(records))
        arrivals = {r.sequence_number: r.arrival for r in records}
        decoded, bad = self._decode(records, arrivals)
        unique = _first_of_each_id(decoded)
        outcome.duplicates = len(decoded) - len(unique)
        positions = [encode_position(d.sequence_number, d.sub_sequence_number, d.line) for d in unique]
        latest = max(r.arrival for r in records)
        failed: list[str] = []
        try:
            kept = self._not_resent(shard_id, unique, positions, latest, deadline)
            outcome.resends = len(unique) - len(kept)
            context = self._context.load([unique[i].event for i in kept], deadline)
        except TransientError as exc:
            outcome.reason = f"dedup or context read failed: {exc}"
            failed.append(first_position_of(records[0].sequence_number))
            kept, context = [], None
        if context is not None:
            effects, rejected = self._effects([(unique[i].event, positions[i]) for i in kept], context)
            for index, reason in rejected.items():
                event = unique[kept[index]]
                bad.append(_bad_row(event, reason, arrivals[event.sequence_number]))
            kept = [i for number, i in enumerate(kept) if number not in rejected]
            outcome.effects = len(effects)
            for positioned in effects:
                self._metrics.add(positioned.position, positioned.effect)
            if self._dedup is not None:
                for i in kept:
                    self._dedup.add(positions[i], unique[i].event.event_id)
        for row in bad:
            self._bad_rows.add(row.position, row)
        outcome.bad_rows = len(bad)
        outcome.bad_row_reasons = [row.reason for row in bad]
        outcome.events = len(kept)
        flush_reason = self._flush(shard_id, deadline, failed)
        outcome.reason = outcome.reason or flush_reason
        if failed:
            outcome.failed_sequence_number = _record_of(records, min(failed))
        return outcome

    # ------------------------------------------------------------------ steps

    def _decode(
        self, records: Sequence[StreamRecord], arrivals: dict[str, datetime]
    ) -> tuple[list[DecodedEvent], list[BadRow]]:
        decoded: list[DecodedEvent] = []
        bad: list[BadRow] = []
        for result in decode_records(records, self._policy):
            if isinstance(result, DecodeError):
                bad.append(BadRow.from_error(result, arrivals[result.sequence_number]))
            else:
                decoded.append(result)
        return decoded, bad

    def _flush(self, shard_id: str, deadline: Deadline, failed: list[str]) -> str:
        """Flush the sinks in order, appending each one's first unpersisted position to ``failed``; after
        a failure (``failed`` not empty) the remaining sinks are discarded. The first failure's reason."""
        sinks: list[tuple[str, Sink[Any]]] = [("bad rows", self._bad_rows)]
        if self._dedup is not None:
            sinks.append(("dedup entries", self._dedup))
        sinks.append(("metrics", self._metrics))
        reason = ""
        for name, sink in sinks:
            first = sink.discard() if failed else sink.flush(shard_id, deadline)
            if first is not None:
                failed.append(first)
                reason = reason or f"{name} not persisted after retries"
        return reason

    def _not_resent(
        self, shard_id: str, unique: list[DecodedEvent], positions: list[str], latest: datetime, deadline: Deadline
    ) -> list[int]:
        """Indexes of ``unique`` that are not resends of an event counted in an earlier batch."""
        if self._dedup is None:
            return list(range(len(unique)))
        pairs = [(d.event.event_id, p) for d, p in zip(unique, positions, strict=True)]
        resent = self._dedup.duplicates(shard_id, pairs, latest, deadline)
        return [i for i in range(len(unique)) if i not in resent]

    def _effects(
        self, events: list[tuple[Event, str]], context: BatchContext
    ) -> tuple[list[Positioned], dict[int, str]]:
        """Every plugin's effects for ``events``, and the events that cannot become effects (index -> why).

        An event a plugin raises on, or whose effects break a store limit, is taken out and every
        plugin runs again without it (plugins are prefix-stable, so later events may depend on it).
        """
        rejected: dict[int, str] = {}
        while True:
            out: list[Positioned] = []
            found = False
            for plugin in self._plugins:
                mine = [
                    i for i, (e, _) in enumerate(events) if e.event_type in plugin.event_types and i not in rejected
                ]
                if not mine:
                    continue
                per_event, problem = _run(plugin, [events[i][0] for i in mine], context)
                if problem is not None:
                    rejected[mine[problem[0]]] = problem[1]
                    found = True
                    break
                for index, effects in zip(mine, per_event, strict=True):
                    position = events[index][1]
                    out.extend(Positioned(position, effect) for effect in effects)
            if not found:
                return out, rejected


def _run(
    plugin: Plugin, events: list[Event], context: BatchContext
) -> tuple[list[list[Effect]], tuple[int, str] | None]:
    """The plugin's effects, or the first event it cannot turn into effects (index into ``events``, why)."""
    try:
        per_event = plugin.effects(events, context)
    except Exception as exc:
        culprit = _first_failing(plugin, events, context)
        if culprit is None:
            raise  # fails on the whole batch but on no prefix of it: not one event's fault, a bug
        return [], (culprit, f"plugin {plugin.name} failed on this event: {type(exc).__name__}: {exc}")
    if len(per_event) != len(events):
        raise RuntimeError(f"plugin {plugin.name} returned {len(per_event)} effect lists for {len(events)} events")
    for index, effects in enumerate(per_event):
        for effect in effects:
            problem = effect_problem(effect)
            if problem is not None:
                return [], (index, f"its effects cannot be stored ({plugin.name}): {problem}")
    return per_event, None


def _first_failing(plugin: Plugin, events: list[Event], context: BatchContext) -> int | None:
    """The event whose addition first makes the plugin raise: the last of the shortest failing prefix."""
    low, high = 1, len(events)  # the whole list fails; find the shortest failing prefix by bisection
    if not _fails(plugin, events[:high], context):
        return None
    while low < high:
        middle = (low + high) // 2
        if _fails(plugin, events[:middle], context):
            high = middle
        else:
            low = middle + 1
    return high - 1


def _fails(plugin: Plugin, events: list[Event], context: BatchContext) -> bool:
    try:
        plugin.effects(events, context)
    except Exception:  # noqa: BLE001 - probing which event a plugin fails on
        return True
    return False


def _bad_row(decoded: DecodedEvent, reason: str, arrival: datetime) -> BadRow:
    return BadRow(
        f"invalid event: {reason}",
        decoded.raw,
        decoded.shard_id,
        decoded.sequence_number,
        decoded.sub_sequence_number,
        decoded.line,
        arrival,
    )


def _first_of_each_id(decoded: list[DecodedEvent]) -> list[DecodedEvent]:
    """First occurrence of each event id, in stream order: a duplicate within the batch counts once."""
    seen: set[str] = set()
    out = []
    for d in decoded:
        if d.event.event_id not in seen:
            seen.add(d.event.event_id)
            out.append(d)
    return out


def _record_of(records: Sequence[StreamRecord], position: str) -> str:
    """The sequence number of the record that holds ``position`` (records are in sequence order)."""
    starts = [first_position_of(r.sequence_number) for r in records]
    index = max(bisect.bisect_right(starts, position) - 1, 0)
    return records[index].sequence_number
