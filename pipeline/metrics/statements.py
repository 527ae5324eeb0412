"""PartiQL for one :class:`~pipeline.metrics.plan.ItemWrite`, and AttributeValue conversions.

Every name is quoted: attribute names in a statement as ``"name"`` (identifiers; the key and metric
names include DynamoDB reserved words such as ``timestamp``, ``status`` and ``minute``, and watermark
names contain ``-``), and in an INSERT tuple as ``'name'``. Every value is a ``?`` parameter, typed
by boto3's :class:`~boto3.dynamodb.types.TypeSerializer` (``int`` and ``Decimal`` -> ``N``, ``str`` ->
``S``), so no value is ever spliced into the text. The shapes::

    INSERT INTO "tbl" VALUE {'k1': ?, 'k2': ?, 'a': ?, '_pos_<shard>': ?}

    UPDATE "tbl" SET "a" = "a" + ?, "b" = ?, "mx" = ?, "_pos_<shard>" = ?
    WHERE "k1" = ? AND "k2" = ?                -- the item (a missing item fails the condition)
      AND "_pos_<shard>" = ?                   -- or: "_pos_<shard>" IS MISSING
      AND "a" IS NOT MISSING AND "b" IS MISSING
      AND "mx" < ?                             -- max; "mx" > ? for min

Conditions never use ``OR``: each one states what the writer believes (the watermark is W, or it is
missing; the attribute exists, or it does not), so a stale belief fails the condition instead of
writing, and the writer re-reads. (ministack 1.5.33 also refuses any ``OR`` in an UPDATE's WHERE.)
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from pipeline.metrics.effects import ItemKey, Scalar
from pipeline.metrics.plan import ItemWrite, MetricWriteError

__all__ = ["from_attribute_values", "item_statement", "key_attribute_values", "to_attribute_value"]

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_attribute_value(value: Scalar) -> dict[str, Any]:
    """``{"N": "1.5"}`` / ``{"S": "x"}``; refuses anything but ``int``, ``Decimal`` and ``str``."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise MetricWriteError(f"values are int, Decimal or str, not {type(value).__name__}: {value!r}")
    try:
        serialized = cast(dict[str, Any], _SERIALIZER.serialize(value))
    except (TypeError, ArithmeticError) as exc:  # decimal.Inexact / Rounded past 38 digits
        raise MetricWriteError(f"not a DynamoDB number: {value!r}") from exc
    return serialized


def from_attribute_values(item: Mapping[str, Any]) -> dict[str, object]:
    """A stored item as Python values (numbers come back as ``Decimal``)."""
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


def key_attribute_values(key: ItemKey) -> dict[str, Any]:
    return {name: to_attribute_value(value) for name, value in key}


def item_statement(table: str, write: ItemWrite) -> dict[str, Any]:
    """The ``BatchStatementRequest`` for ``write`` on the physical table ``table``."""
    if write.insert:
        names = ", ".join(f"{_single(name)}: ?" for name in write.sets)
        return {
            "Statement": f"INSERT INTO {_quote(table)} VALUE {{{names}}}",
            "Parameters": [to_attribute_value(value) for value in write.sets.values()],
        }
    assignments: list[str] = []
    parameters: list[dict[str, Any]] = []
    for name, amount in write.increments.items():
        assignments.append(f"{_quote(name)} = {_quote(name)} + ?")
        parameters.append(to_attribute_value(amount))
    for name, value in write.sets.items():
        assignments.append(f"{_quote(name)} = ?")
        parameters.append(to_attribute_value(value))
    conditions: list[str] = []
    for name, value in write.key:
        conditions.append(f"{_quote(name)} = ?")
        parameters.append(to_attribute_value(value))
    if write.watermark is not None:
        name, expected = write.watermark
        if expected is None:
            conditions.append(f"{_quote(name)} IS MISSING")
        else:
            conditions.append(f"{_quote(name)} = ?")
            parameters.append(to_attribute_value(expected))
    conditions.extend(f"{_quote(name)} IS NOT MISSING" for name in sorted(write.present))
    conditions.extend(f"{_quote(name)} IS MISSING" for name in sorted(write.absent))
    for name, op, value in write.improves:
        conditions.append(f"{_quote(name)} {op} ?")
        parameters.append(to_attribute_value(value))
    # Names are quoted identifiers (checked by _quote) and every value is a parameter: nothing is spliced.
    statement = f"UPDATE {_quote(table)} SET {', '.join(assignments)} WHERE {' AND '.join(conditions)}"  # noqa: S608
    return {"Statement": statement, "Parameters": parameters, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}


def _quote(name: str) -> str:
    if '"' in name or not name:
        raise MetricWriteError(f"attribute or table name cannot be quoted in PartiQL: {name!r}")
    return f'"{name}"'


def _single(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"
