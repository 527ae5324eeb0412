"""The one contract of everything a batch writes: add what to persist, flush, learn what is not persisted.

Implemented by the metric writer (:class:`~pipeline.metrics.writer.DynamoMetricWriter`), the bad-row
sink (:class:`~pipeline.consumer.badrows.S3BadRowSink`), the dedup window
(:class:`~pipeline.consumer.dedup.EventDeduplicator`) and the archive's object writer
(:class:`~pipeline.objectstore.S3ObjectWriter`), and by their in-memory stand-ins in ``tools``.

Guarantees every implementation keeps:

- ``add(position, item)`` only buffers: no I/O.
- ``flush(shard_id, deadline)`` persists everything added since the last flush or discard, retrying
  transient failures by the retry policy until the deadline; it returns ``None`` when all of it is
  persisted, else the **first position not persisted** (everything before that position is). It
  raises only for errors retrying cannot fix (a bug, a missing table). Its buffer is empty afterwards,
  whatever happened: the caller re-delivers what failed (Lambda retries the batch from that position).
- ``discard()`` empties the buffer without writing and returns its first position (``None`` if
  empty): what a sink did not persist because an earlier sink of the batch failed.
- Flushing the same items twice writes them once (each implementation says how: keys made of
  positions, watermarks, put-if-absent).
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from pipeline.retry import Deadline

__all__ = ["Sink"]

T_contra = TypeVar("T_contra", contravariant=True)


class Sink(Protocol[T_contra]):
    def add(self, position: str, item: T_contra) -> None: ...

    def flush(self, shard_id: str, deadline: Deadline) -> str | None: ...

    def discard(self) -> str | None: ...
