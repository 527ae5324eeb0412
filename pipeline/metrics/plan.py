"""From a batch's positioned effects to per-item plans, and the pure rules of one item write.

Shared by :class:`~pipeline.metrics.writer.DynamoMetricWriter` and the in-memory reference writer
(:mod:`tools.memory`), so both take the same decisions from the same known item state:

- :func:`coalesce` merges a batch into at most one plan per distinct item (``Add`` and ``Extreme``),
  one ``PutOnce`` per key (the lowest position wins) and one message per ``(queue, dedup_id)``.
  A plan keeps the per-position contributions, so it can re-apply only the part an item lacks.
- :func:`plan_write` turns a plan and the item's last known state into one :class:`ItemWrite`
  (INSERT when the item is believed missing, else a conditional UPDATE), or ``None`` when the state
  already includes everything.
- :func:`check_write` is what the store decides for that write (the condition), and
  :func:`apply_write` the state after it; the memory store runs both, the DynamoDB writer keeps its
  cache with :func:`apply_write`.

Known state is an item as a mapping of attribute to value, ``None`` for "no such item". Everything
here is pure and thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from pipeline.exceptions import MetricWriteError
from pipeline.metrics.effects import Add, Effect, Extreme, ItemKey, Message, PutOnce, Scalar
from pipeline.metrics.numbers import Number, add_exact
from pipeline.metrics.partials import index_attributes

__all__ = [
    "WATERMARK_PREFIX",
    "Batch",
    "ItemPlan",
    "ItemRef",
    "ItemWrite",
    "MessagePlan",
    "MetricWriteError",
    "Number",
    "Positioned",
    "PutPlan",
    "State",
    "apply_write",
    "check_write",
    "coalesce",
    "plan_write",
    "unpersisted_from",
    "watermark_attribute",
]

ItemRef = tuple[str, ItemKey]
"""``(logical table, key)``: one stored item."""
State = Mapping[str, object]
"""An item as last known (attribute -> value). ``None`` in its place means "no such item"."""
Op = Literal["<", ">"]

WATERMARK_PREFIX = "_pos_"
CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailed"
DUPLICATE_ITEM = "DuplicateItem"


def watermark_attribute(shard_id: str) -> str:
    """The attribute holding the position of the last event of ``shard_id`` an item includes."""
    return f"{WATERMARK_PREFIX}{shard_id}"


@dataclass(frozen=True, slots=True)
class Positioned:
    """An effect and the stream position (:mod:`pipeline.metrics.positions`) of the event that caused it."""

    position: str
    effect: Effect


@dataclass(slots=True)
class _Candidate:
    position: str
    value: Scalar
    companions: Mapping[str, Scalar]


@dataclass(slots=True)
class _ExtremeSlot:
    kind: Literal["max", "min"]
    candidates: list[_Candidate] = field(default_factory=list)

    def best(self) -> _Candidate:
        """The winning candidate: the best value; on a tie, the lowest position (the first event)."""
        winner = self.candidates[0]
        for candidate in self.candidates[1:]:
            if _beats(self.kind, candidate.value, winner.value) or (
                candidate.value == winner.value and candidate.position < winner.position
            ):
                winner = candidate
        return winner


@dataclass(slots=True)
class ItemPlan:
    """Everything one flush does to one item: per-position counter contributions and extremes."""

    table: str
    key: ItemKey
    adds: dict[str, dict[str, Number]] = field(default_factory=dict)
    """position -> attribute -> amount (effects of one position are summed)."""
    extremes: dict[str, _ExtremeSlot] = field(default_factory=dict)

    def positions(self) -> list[str]:
        found = list(self.adds)
        for slot in self.extremes.values():
            found.extend(candidate.position for candidate in slot.candidates)
        return found


@dataclass(frozen=True, slots=True)
class PutPlan:
    position: str
    """The lowest position putting this key: the one that wins."""
    put: PutOnce


@dataclass(frozen=True, slots=True)
class MessagePlan:
    position: str
    """The lowest position sending this ``dedup_id``."""
    message: Message


@dataclass(slots=True)
class Batch:
    """A coalesced batch, one entry per distinct item / put key / message, in first-seen order."""

    puts: dict[ItemRef, PutPlan] = field(default_factory=dict)
    items: dict[ItemRef, ItemPlan] = field(default_factory=dict)
    messages: dict[tuple[str, str], MessagePlan] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ItemWrite:
    """One conditional write of one item; what a PartiQL statement or the memory store executes.

    INSERT (``insert``): the item is ``key`` + ``sets``; fails ``DuplicateItem`` if it exists.
    UPDATE: ``a = a + v`` for ``increments``, ``a = v`` for ``sets``; fails ``ConditionalCheckFailed``
    unless the item exists, its ``watermark`` attribute equals the expected value (``None``: is
    missing), every attribute of ``present`` exists, every one of ``absent`` is missing, and each
    ``(attribute, op, value)`` of ``improves`` holds as ``stored op value``.
    """

    table: str
    key: ItemKey
    insert: bool
    increments: Mapping[str, Number] = field(default_factory=dict)
    sets: Mapping[str, Scalar] = field(default_factory=dict)
    watermark: tuple[str, str | None] | None = None
    present: frozenset[str] = frozenset()
    absent: frozenset[str] = frozenset()
    improves: tuple[tuple[str, Op, Scalar], ...] = ()

    @property
    def ref(self) -> ItemRef:
        return (self.table, self.key)


def coalesce(effects: Iterable[Positioned]) -> Batch:
    """Merge a batch's effects per item; see the module docstring for the merge rules."""
    batch = Batch()
    for positioned in effects:
        position, effect = positioned.position, positioned.effect
        if isinstance(effect, Message):
            dedup = (effect.queue, effect.dedup_id)
            known = batch.messages.get(dedup)
            if known is None or position < known.position:
                batch.messages[dedup] = MessagePlan(position, effect)
            continue
        ref = (effect.table, effect.key)
        if isinstance(effect, PutOnce):
            put = batch.puts.get(ref)
            if put is None or position < put.position:
                batch.puts[ref] = PutPlan(position, effect)
            continue
        plan = batch.items.get(ref)
        if plan is None:
            plan = batch.items[ref] = ItemPlan(effect.table, effect.key)
        if isinstance(effect, Add):
            amounts = plan.adds.setdefault(position, {})
            for attribute, amount in effect.amounts.items():
                amounts[attribute] = add_exact(amounts.get(attribute, 0), amount, f"{effect.table}.{attribute}")
        else:
            _add_extreme(plan, position, effect)
    return batch


def _add_extreme(plan: ItemPlan, position: str, effect: Extreme) -> None:
    slot = plan.extremes.get(effect.attribute)
    if slot is None:
        slot = plan.extremes[effect.attribute] = _ExtremeSlot(effect.kind)
    elif slot.kind != effect.kind:
        raise MetricWriteError(f"{effect.table}.{effect.attribute} is kept as both max and min")
    slot.candidates.append(_Candidate(position, effect.value, effect.companions))


def plan_write(plan: ItemPlan, shard_id: str, state: State | None, key_split: int = 1) -> ItemWrite | None:
    """The one write that brings an item in ``state`` up to ``plan``; ``None`` if it already is.
    ``key_split`` is the deployment's (it splits an index's day as it splits partition keys).

    Counters: only the contributions after the stored watermark of ``shard_id`` are added, and the
    watermark moves to the highest of them, conditioned on it still being what ``state`` says.
    Extremes: written only if they beat the stored value, conditioned on still beating it.
    """
    wm_attribute = watermark_attribute(shard_id)
    stored_wm = _stored_watermark(state, wm_attribute)
    pending = [position for position in plan.adds if stored_wm is None or position > stored_wm]
    totals: dict[str, Number] = {}
    for position in pending:
        for attribute, amount in plan.adds[position].items():
            totals[attribute] = add_exact(totals.get(attribute, 0), amount, f"{plan.table}.{attribute}")
    winners = {
        attribute: slot.best()
        for attribute, slot in plan.extremes.items()
        if _improves(slot.kind, slot.best().value, state, attribute)
    }
    if not pending and not winners:
        return None
    sets: dict[str, Scalar] = {}
    if state is None:
        sets.update(plan.key)
        sets.update(index_attributes(plan.table, plan.key, shard_id, key_split))
        sets.update(totals)
        if pending:
            sets[wm_attribute] = max(pending)
        for attribute, winner in winners.items():
            sets[attribute] = winner.value
            sets.update(winner.companions)
        return ItemWrite(plan.table, plan.key, insert=True, sets=sets)
    increments = {attribute: total for attribute, total in totals.items() if attribute in state}
    absent = {attribute for attribute in totals if attribute not in state}
    sets.update({attribute: totals[attribute] for attribute in absent})
    improves: list[tuple[str, Op, Scalar]] = []
    for attribute, winner in winners.items():
        sets[attribute] = winner.value
        sets.update(winner.companions)
        if attribute in state:
            improves.append((attribute, "<" if plan.extremes[attribute].kind == "max" else ">", winner.value))
        else:
            absent.add(attribute)
    watermark = None
    if pending:
        sets[wm_attribute] = max(pending)
        watermark = (wm_attribute, stored_wm)
    return ItemWrite(
        plan.table,
        plan.key,
        insert=False,
        increments=increments,
        sets=sets,
        watermark=watermark,
        present=frozenset(increments),
        absent=frozenset(absent),
        improves=tuple(improves),
    )


def unpersisted_from(plan: ItemPlan, shard_id: str, state: State | None, *, known: bool) -> str | None:
    """The lowest position of ``plan`` whose effect ``state`` does not include (all, if not ``known``)."""
    if not known:
        return min(plan.positions())
    stored_wm = _stored_watermark(state, watermark_attribute(shard_id))
    missing = [position for position in plan.adds if stored_wm is None or position > stored_wm]
    for attribute, slot in plan.extremes.items():
        missing.extend(c.position for c in slot.candidates if _improves(slot.kind, c.value, state, attribute))
    return min(missing, default=None)


def check_write(state: State | None, write: ItemWrite) -> str | None:
    """The error code a store reports for ``write`` on an item in ``state``; ``None`` if it applies."""
    if write.insert:
        return DUPLICATE_ITEM if state is not None else None
    if state is None:
        return CONDITIONAL_CHECK_FAILED
    if write.watermark is not None:
        attribute, expected = write.watermark
        if state.get(attribute) != expected:
            return CONDITIONAL_CHECK_FAILED
    if not all(attribute in state for attribute in write.present):
        return CONDITIONAL_CHECK_FAILED
    if any(attribute in state for attribute in write.absent):
        return CONDITIONAL_CHECK_FAILED
    for attribute, op, value in write.improves:
        stored = state.get(attribute)
        if stored is None or not _compare(stored, op, value):
            return CONDITIONAL_CHECK_FAILED
    return None


def apply_write(state: State | None, write: ItemWrite) -> dict[str, object]:
    """The item after ``write`` applied to ``state`` (the caller has checked the condition)."""
    if write.insert or state is None:
        return dict(write.sets)
    after = dict(state)
    for attribute, amount in write.increments.items():
        current = after.get(attribute, 0)
        if not isinstance(current, int | Decimal):
            raise MetricWriteError(f"{write.table}.{attribute} holds {type(current).__name__}, not a number")
        after[attribute] = add_exact(current, amount, f"{write.table}.{attribute}")
    after.update(write.sets)
    return after


def _stored_watermark(state: State | None, attribute: str) -> str | None:
    if state is None:
        return None
    value = state.get(attribute)
    return value if isinstance(value, str) else None


def _improves(kind: Literal["max", "min"], value: Scalar, state: State | None, attribute: str) -> bool:
    if state is None or attribute not in state:
        return True
    return _compare(state[attribute], "<" if kind == "max" else ">", value)


def _beats(kind: Literal["max", "min"], value: Scalar, other: Scalar) -> bool:
    return _compare(other, "<" if kind == "max" else ">", value)


def _compare(stored: object, op: Op, value: Scalar) -> bool:
    """``stored op value`` with DynamoDB's typing: numbers with numbers, strings with strings."""
    if isinstance(stored, str) and isinstance(value, str):
        return stored < value if op == "<" else stored > value
    if isinstance(stored, int | Decimal) and isinstance(value, int | Decimal) and not isinstance(value, bool):
        return stored < value if op == "<" else stored > value
    raise MetricWriteError(f"cannot compare stored {type(stored).__name__} with {type(value).__name__}")
