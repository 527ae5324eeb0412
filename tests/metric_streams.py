"""Positioned effect streams and checks shared by the metric writer tests (unit and functional).

A stream is what a consumer hands the writer for one shard: effects in event order, each with the
position of its event. :func:`sample_stream` makes one with every effect kind on a few hot items;
its extreme values are distinct, so the expected state never depends on how ties are broken.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Protocol

from pipeline.metrics.effects import Add, Effect, Extreme, ItemKey, Message, PutOnce
from pipeline.metrics.flush import FlushResult
from pipeline.metrics.partials import partial_key
from pipeline.metrics.plan import Positioned, watermark_attribute
from pipeline.retry import NO_DEADLINE, Deadline
from pipeline.stream import encode_position
from tools.memory import MemoryStore
from tools.oracle import Tables, apply_effects

__all__ = [
    "SHARD",
    "assert_persisted_before",
    "batches",
    "delivered",
    "expected_messages",
    "expected_tables",
    "flushed",
    "order_key",
    "pos",
    "sample_stream",
    "suffix_from",
]

SHARD = "shardId-000000000000"


class _MetricSink(Protocol):
    last: FlushResult | None

    def add(self, position: str, item: Effect) -> None: ...

    def flush(self, shard_id: str, deadline: Deadline) -> str | None: ...


def flushed(
    writer: _MetricSink, shard_id: str, stream: Sequence[Positioned], deadline: Deadline = NO_DEADLINE
) -> FlushResult:
    """Add ``stream`` to ``writer`` (a metric sink) and flush it: the flush's whole result."""
    for positioned in stream:
        writer.add(positioned.position, positioned.effect)
    writer.flush(shard_id, deadline)
    assert writer.last is not None
    return writer.last


def pos(i: int, sequence_base: int = 49_650_000_000_000_000_000) -> str:
    """The position of event ``i`` (one Kinesis record per event)."""
    return encode_position(str(sequence_base + i))


def order_key(bucket: str) -> ItemKey:
    return (("metric_type", "hourly_orders"), ("time_bucket", bucket))


def sample_stream(n: int, *, items: int = 4, start: int = 0, users: int = 3) -> list[Positioned]:
    """``n`` events from ``start``: counters and extremes on ``items`` hot items each (partial tables: orders,
    system metrics), sessions (an extreme with a companion), puts, messages."""
    stream: list[Positioned] = []
    for i in range(start, start + n):
        at = pos(i)
        key = order_key(f"2026-11-24#{i % items:02d}")
        series = (("metric_key", "latency#api"), ("minute", f"2026-11-24T10:{i % items:02d}"))
        user = (("user_id", f"u{i % users}"),)
        stream += [
            Positioned(at, Add("order_metrics", key, {"orders": 1, "revenue": Decimal("19.99") + Decimal(i) / 100})),
            Positioned(at, Extreme("system_metrics", series, "max", _distinct(i))),
            Positioned(at, Extreme("system_metrics", series, "min", _distinct(i), kind="min")),
            Positioned(at, Extreme("user_sessions", user, "last_activity", _stamp(i), companions={"started": f"s{i}"})),
        ]
        if i % 3 == 0:
            when = (("user_id", f"u{i % users}"), ("timestamp", _stamp(i // 6)))  # events i, i+3 share a row
            stream.append(Positioned(at, PutOnce("user_activities", when, {**dict(when), "event": f"e{i}"})))
        if i % 4 == 0:
            body = {"order_id": f"o{i // 8}", "total_amount": Decimal("19.99"), "event": f"e{i}"}
            stream.append(Positioned(at, Message("fulfilment", body, f"o{i // 8}", f"g{i % 2}")))
    return stream


def batches(stream: Sequence[Positioned], events: int) -> list[list[Positioned]]:
    """Cut ``stream`` into batches of ``events`` whole events (a flush never splits an event)."""
    out: list[list[Positioned]] = []
    seen: list[str] = []
    for positioned in stream:
        if not seen or positioned.position != seen[-1]:
            seen.append(positioned.position)
            if len(seen) % events == 1 or events == 1:
                out.append([])
        out[-1].append(positioned)
    return out


def suffix_from(stream: Sequence[Positioned], position: str) -> list[Positioned]:
    """What Lambda re-delivers after a checkpoint at ``position``'s record."""
    return [p for p in stream if p.position >= position]


def effects_of(stream: Iterable[Positioned]) -> list[Effect]:
    return [p.effect for p in stream]


def expected_tables(stream: Iterable[Positioned]) -> Tables:
    return apply_effects(effects_of(stream))


def expected_messages(stream: Iterable[Positioned]) -> dict[str, dict[str, object]]:
    """The body a queue must hold per deduplication id: the first event's (order across ids is free)."""
    bodies: dict[str, dict[str, object]] = {}
    for positioned in stream:
        if isinstance(positioned.effect, Message):
            bodies.setdefault(positioned.effect.dedup_id, dict(positioned.effect.body))
    return bodies


def delivered(store: MemoryStore, queue: str = "fulfilment") -> dict[str, dict[str, object]]:
    return {message.dedup_id: dict(message.body) for message in store.messages(queue)}


def assert_persisted_before(store: MemoryStore, shard_id: str, stream: Sequence[Positioned], before: str) -> None:
    """Every effect of an event before ``before`` is in ``store``: what makes Lambda's checkpoint safe."""
    sent = {(m.queue, m.dedup_id) for queue in ("fulfilment",) for m in store.messages(queue)}
    for positioned in stream:
        if positioned.position >= before:
            continue
        effect = positioned.effect
        if isinstance(effect, Message):
            assert (effect.queue, effect.dedup_id) in sent, positioned
            continue
        item = store.item(effect.table, partial_key(effect.table, effect.key, shard_id))
        assert item is not None, positioned
        if isinstance(effect, Add):
            watermark = item.get(watermark_attribute(shard_id))
            assert isinstance(watermark, str), positioned
            assert watermark >= positioned.position, positioned
        elif isinstance(effect, Extreme):
            stored = item[effect.attribute]
            assert stored == effect.value or (stored > effect.value if effect.kind == "max" else stored < effect.value)  # type: ignore[operator]


def _distinct(i: int) -> Decimal:
    """A value per event that jumps around and never repeats."""
    return Decimal((i * 37) % 101) + Decimal(i) / 1000


def _stamp(i: int) -> str:
    return f"2026-11-{24 + i // 60:02d}T10:{(i * 7) % 60:02d}:{i % 60:02d}Z"
