"""What plugins produce: effects on stored items, as plain values. No boto3, no Lambda types.

A plugin turns one event into effects; the writer coalesces the effects of a whole batch into at
most one write per distinct item and applies them exactly once (see ``pipeline.metrics.writer``).

Effect kinds and their merge rules (all commutative, so coalescing order does not matter):

- :class:`Add`: counters, ``ADD`` semantics (sums). The only kind that is not idempotent by
  itself; the writer makes it exactly-once with a per-shard position watermark on the item.
- :class:`Extreme`: ``max`` or ``min`` of a value (``last_viewed``, metric ``min``/``max``): written
  only when it improves the stored value, never moving it backwards. Idempotent.
- :class:`PutOnce`: a whole item written only if absent (``user_activities`` rows). Idempotent.
- :class:`Message`: a message to a queue with a deduplication id (fulfilment on SQS FIFO).

Keys are tuples of ``(attribute, value)`` pairs in the table's key order, so they hash and compare.
Values are ``str``, ``int`` or ``Decimal`` (never float: DynamoDB refuses it, sums would drift).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

__all__ = [
    "Add",
    "Effect",
    "Extreme",
    "ItemKey",
    "Message",
    "PutOnce",
    "Scalar",
]

Scalar = str | int | Decimal
ItemKey = tuple[tuple[str, Scalar], ...]
"""An item's key: ``(("metric_type", "hourly_orders"), ("time_bucket", "2026-11-24#10"))``."""


@dataclass(frozen=True, slots=True)
class Add:
    """Add ``amounts`` to counters of ``table`` / ``key`` (counters start at zero)."""

    table: str
    key: ItemKey
    amounts: Mapping[str, int | Decimal]


@dataclass(frozen=True, slots=True)
class Extreme:
    """Keep the ``kind`` (max or min) of ``value`` in ``attribute``; never moves backwards.

    ``companions`` are written together with ``value`` whenever it wins, and only then (a session's
    start travels with its ``last_activity``).
    """

    table: str
    key: ItemKey
    attribute: str
    value: Scalar
    kind: Literal["max", "min"] = "max"
    companions: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PutOnce:
    """Write ``item`` (key attributes included) unless an item with that key exists."""

    table: str
    key: ItemKey
    item: Mapping[str, Scalar]


@dataclass(frozen=True, slots=True)
class Message:
    """A message for ``queue`` (a logical name); ``dedup_id`` makes resends harmless within the window."""

    queue: str
    body: Mapping[str, object]
    dedup_id: str
    group_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)


Effect = Add | Extreme | PutOnce | Message
