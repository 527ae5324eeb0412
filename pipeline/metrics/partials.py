"""Per-shard partial items of the counter tables, and the one merge that reads them as logical items.

A table declared ``partial`` in :data:`~pipeline.metrics.tables.TABLES` (``order_metrics``,
``product_metrics``, ``system_metrics``) stores each logical item as one *partial* item per shard
that wrote it: the writer appends ``~<shard ordinal>`` to the sort key value
(``2026-11-24#10`` -> ``2026-11-24#10~7`` for ``shardId-000000000007``). Plugins and effects keep
logical keys; the suffix is the writer's business (:func:`partial_effect`). So a partial holds exactly
one watermark, its own shard's, and its size and write units do not grow with the shard count.

Why ``~``: it sorts after every character of the buckets (digits, ``-``, ``#``, ``T``, ``:``), so
``begins_with(sk, "YYYY-MM-DD#")`` still selects exactly that day's partials, and a ``BETWEEN a AND
b`` condition selects them with ``b`` widened by :func:`upper_bound`.

Reading: :func:`merge_items` groups stored items by logical key and merges each group: counters
(numbers) are summed exactly, the table's declared extremes take their max or min, the watermarks
(``_pos_*``) and the index attribute (``day_attribute``) are dropped. An item without a suffix (written
before partials existed) is one more partial of its logical item. Every reader of these tables goes
through it, so the logical tables equal what :func:`tools.oracle.apply_effects` computes.

Guarantee the merge relies on, enforced by :func:`partial_effect`: on a partial table every extreme is
a declared one, of the declared kind, with no companions; every other attribute is a counter.

**Hot-key write sharding** (``split`` K > 1, the template's ``MetricKeySplit``): the partition key
value gains ``~<shard ordinal mod K>`` too, so the partials of one logical item spread over K
partition keys (each shard's partial stays on one). Readers query all K (:func:`partition_values`)
and merge with the same K. K is part of where a shard's partial lives: change it only when no batch
is waiting for a retry (a batch re-delivered after the change would meet a new partial without its
watermark and count again); partials written under the old K stay readable only with the old K.
With K > 1 a partition key value that itself ends in ``~<digits>`` would be read as a split one:
the partial tables' partition keys (metric types, product ids, metric names) are not expected to. The product index's
day (``view_day``) is split the same way, so the index's partition of a day is not one hot key either.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Final

from pipeline.exceptions import MetricWriteError
from pipeline.metrics.effects import Add, Effect, Extreme, ItemKey
from pipeline.metrics.numbers import add_exact
from pipeline.metrics.tables import TABLES, TableSpec

__all__ = [
    "SEPARATOR",
    "SPLIT_MAX",
    "SPLIT_SUFFIX_MAX_BYTES",
    "SUFFIX_MAX_BYTES",
    "index_attributes",
    "is_partial",
    "logical_key",
    "merge_items",
    "merge_tables",
    "partial_effect",
    "partial_key",
    "partial_rekey",
    "partition_values",
    "shard_ordinal",
    "shard_suffix",
    "upper_bound",
]

SEPARATOR: Final = "~"
SUFFIX_MAX_BYTES: Final = 13
"""The longest sort key suffix: ``~`` and 12 digits (a Kinesis shard id's ordinal; a CRC-32 has at most 10)."""
SPLIT_MAX: Final = 100
"""The largest key split (the template's ``MetricKeySplit`` maximum)."""
SPLIT_SUFFIX_MAX_BYTES: Final = len(f"{SEPARATOR}{SPLIT_MAX - 1}")
"""The longest partition key suffix."""
_WATERMARK_PREFIX: Final = "_pos_"  # pipeline.metrics.plan.WATERMARK_PREFIX (plan imports this module)
_ORDINAL = re.compile(r"(\d+)$")
_SUFFIX = re.compile(r"~\d+$")


def is_partial(table: str) -> bool:
    """Whether ``table`` (a logical name) is written as per-shard partial items."""
    spec = TABLES.get(table)
    return spec is not None and spec.partial


def shard_ordinal(shard_id: str) -> int:
    """``7`` for ``shardId-000000000007``; any other id (tests, tools), or one with more than 12
    trailing digits, its CRC-32, so a suffix is at most :data:`SUFFIX_MAX_BYTES` long."""
    found = _ORDINAL.search(shard_id)
    return int(found.group(1)) if found and len(found.group(1)) <= 12 else zlib.crc32(shard_id.encode())


def shard_suffix(shard_id: str) -> str:
    """``~7`` for ``shardId-000000000007``: the separator and the shard's ordinal."""
    return f"{SEPARATOR}{shard_ordinal(shard_id)}"


def partial_key(table: str, key: ItemKey, shard_id: str, split: int = 1) -> ItemKey:
    """The key of ``shard_id``'s partial of the logical item ``key``; ``key`` itself if not partial.

    With ``split`` K > 1 the partition key value also gains ``~<ordinal mod K>``.
    """
    if not is_partial(table):
        return key
    return _suffixed(key, *_suffixes(shard_id, split))


def _suffixes(shard_id: str, split: int) -> tuple[str, str]:
    """The partition key's suffix (empty without a split) and the sort key's, for ``shard_id``."""
    ordinal = shard_ordinal(shard_id)
    return (f"{SEPARATOR}{ordinal % split}" if split > 1 else ""), f"{SEPARATOR}{ordinal}"


def _suffixed(key: ItemKey, head_suffix: str, sort_suffix: str) -> ItemKey:
    (head_name, head), *middle, (name, value) = key
    if head_suffix:
        head = f"{head}{head_suffix}"
    return ((head_name, head), *middle, (name, f"{value}{sort_suffix}"))


def logical_key(table: str, key: ItemKey, split: int = 1) -> ItemKey:
    """The logical item a stored partial belongs to (the key without its suffixes, if it has them)."""
    if not is_partial(table):
        return key
    (head_name, head), *middle, (name, value) = key
    if split > 1 and isinstance(head, str):
        head = _SUFFIX.sub("", head)
    if isinstance(value, str):
        value = _SUFFIX.sub("", value)
    return ((head_name, head), *middle, (name, value))


def partition_values(table: str, value: str, split: int = 1) -> list[str]:
    """The stored partition key values of the logical ``value``: one per key split."""
    if split <= 1 or not is_partial(table):
        return [value]
    return [f"{value}{SEPARATOR}{k}" for k in range(split)]


def upper_bound(sort_value: str) -> str:
    """The upper bound that makes ``BETWEEN lo AND upper_bound(hi)`` include ``hi``'s partials."""
    return f"{sort_value}{SEPARATOR}{SEPARATOR}"


def index_attributes(table: str, key: ItemKey, shard_id: str = "", split: int = 1) -> dict[str, str]:
    """Attributes ``shard_id``'s new partial ``key`` is created with besides its key: the plain logical
    sort key for an index (the day), with ``~<shard ordinal mod K>`` when ``split`` K > 1, so the
    index's day is split as the partition keys are (read by K Queries, :func:`partition_values`)."""
    spec = TABLES.get(table)
    if spec is None or spec.day_attribute is None:
        return {}
    value = str(logical_key(table, key, split)[-1][1])
    if split > 1:
        value = f"{value}{SEPARATOR}{shard_ordinal(shard_id) % split}"
    return {spec.day_attribute: value}


def partial_effect(effect: Effect, shard_id: str, split: int = 1) -> Effect:
    """``effect`` re-keyed to ``shard_id``'s partial (counters and extremes of partial tables only).

    Raises :class:`~pipeline.exceptions.MetricWriteError` for an extreme the merge could not read
    back: undeclared, of the other kind, or with companions.
    """
    return partial_rekey(shard_id, split)(effect)


def partial_rekey(shard_id: str, split: int = 1) -> Callable[[Effect], Effect]:
    """:func:`partial_effect` for many effects of one shard: its suffixes are built once (a flush
    re-keys every effect of its batch), not once per effect."""
    head_suffix, sort_suffix = _suffixes(shard_id, split)

    def rekey(effect: Effect) -> Effect:
        if isinstance(effect, Add):
            if not is_partial(effect.table):
                return effect
            return Add(effect.table, _suffixed(effect.key, head_suffix, sort_suffix), effect.amounts)
        if isinstance(effect, Extreme) and is_partial(effect.table):
            declared = TABLES[effect.table].extremes.get(effect.attribute)
            if declared != effect.kind or effect.companions:
                raise MetricWriteError(
                    f"{effect.table}.{effect.attribute}: a partial table's extremes are declared in "
                    f"TableSpec.extremes ({dict(TABLES[effect.table].extremes)}) and carry no companions"
                )
            key = _suffixed(effect.key, head_suffix, sort_suffix)
            return Extreme(effect.table, key, effect.attribute, effect.value, effect.kind, effect.companions)
        return effect

    return rekey


def merge_items(table: str, items: Iterable[Mapping[str, object]], split: int = 1) -> dict[ItemKey, dict[str, object]]:
    """Stored items of ``table`` (a table of :data:`TABLES`, key attributes included) as logical items;
    ``split`` is the deployment's key split (the writers').

    Raises :class:`~pipeline.exceptions.MetricWriteError` for an attribute that partials cannot merge
    (the writer never stores one, see the module docstring).
    """
    spec = TABLES.get(table)
    if spec is None:
        raise MetricWriteError(f"unknown table {table!r}: its key attributes are not declared")
    return _merge(table, ((tuple((name, item[name]) for name in spec.keys), item) for item in items), split)  # type: ignore[misc]


def merge_tables(
    tables: Mapping[str, Mapping[ItemKey, Mapping[str, object]]], split: int = 1
) -> dict[str, dict[ItemKey, dict[str, object]]]:
    """``{table: {stored key: item}}`` as ``{table: {logical key: logical item}}``.

    Tables that are not partial (or not in :data:`TABLES`) come back as they are, without watermarks.
    """
    return {table: _merge(table, items.items(), split) for table, items in tables.items()}


def _merge(
    table: str, pairs: Iterable[tuple[ItemKey, Mapping[str, object]]], split: int
) -> dict[ItemKey, dict[str, object]]:
    spec = TABLES.get(table)
    partial = spec is not None and spec.partial
    merged: dict[ItemKey, dict[str, object]] = {}
    for stored, item in pairs:
        key = logical_key(table, stored, split)
        into = merged.get(key)
        if into is None:
            merged[key] = into = dict(key)
        names = {name for name, _ in key}
        for name, value in item.items():
            if name.startswith(_WATERMARK_PREFIX) or name in names:
                continue
            if spec is not None and partial:
                if name != spec.day_attribute:
                    _merge_attribute(spec, table, into, name, value)
            else:
                into[name] = value
    return merged


def _merge_attribute(spec: TableSpec, table: str, into: dict[str, object], name: str, value: object) -> None:
    if name not in into:
        into[name] = value
        return
    current = into[name]
    kind = spec.extremes.get(name)
    if kind is not None:
        if isinstance(current, str) and isinstance(value, str):
            into[name] = max(current, value) if kind == "max" else min(current, value)
            return
        if _number(current) and _number(value):
            a, b = Decimal(current), Decimal(value)  # type: ignore[arg-type]  # _number checked both
            into[name] = current if (a >= b if kind == "max" else a <= b) else value
            return
        raise MetricWriteError(f"{table}.{name}: partials hold {current!r} and {value!r}")
    if _number(current) and _number(value):
        into[name] = add_exact(current, value, f"{table}.{name}")  # type: ignore[arg-type]  # _number checked both
        return
    raise MetricWriteError(f"{table}.{name} is neither a counter nor a declared extreme: {current!r}, {value!r}")


def _number(value: object) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)
