"""PartiQL for one :class:`~pipeline.metrics.plan.ItemWrite`, and AttributeValue conversions.

Every name is quoted: attribute names in a statement as ``"name"`` (identifiers; the key and metric
names include DynamoDB reserved words such as ``timestamp``, ``status`` and ``minute``, and watermark
names contain ``-``), and in an INSERT tuple as ``'name'``. Every value is a ``?`` parameter, typed
the way boto3's ``TypeSerializer`` types them (``int`` and ``Decimal`` -> ``N`` within DynamoDB's
38-digit context, ``str`` -> ``S``), so no value is ever spliced into the text. (The conversion is
done here rather than by importing ``boto3.dynamodb.types``, which would pull all of boto3 and
s3transfer into the Lambda's cold start.) The shapes::

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
from typing import Any

from pipeline.metrics.effects import ItemKey, Scalar
from pipeline.metrics.numbers import DYNAMODB_CONTEXT
from pipeline.metrics.plan import ItemWrite, MetricWriteError

__all__ = [
    "from_attribute_value",
    "from_attribute_values",
    "item_statement",
    "key_attribute_values",
    "to_attribute_value",
]


def to_attribute_value(value: Scalar) -> dict[str, Any]:
    """``{"N": "1.5"}`` / ``{"S": "x"}``; refuses anything but ``int``, ``Decimal`` and ``str``."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise MetricWriteError(f"values are int, Decimal or str, not {type(value).__name__}: {value!r}")
    if isinstance(value, str):
        return {"S": value}
    try:
        number = DYNAMODB_CONTEXT.create_decimal(value)
    except ArithmeticError as exc:  # Inexact / Rounded past 38 digits, Overflow, Underflow
        raise MetricWriteError(f"not a DynamoDB number: {value!r}") from exc
    if not number.is_finite():
        raise MetricWriteError(f"not a DynamoDB number: {value!r}")
    return {"N": str(number)}


def from_attribute_values(item: Mapping[str, Any]) -> dict[str, object]:
    """A stored item as Python values (numbers come back as ``Decimal``)."""
    return {name: from_attribute_value(value) for name, value in item.items()}


def from_attribute_value(value: Mapping[str, Any]) -> object:
    """One AttributeValue as Python: ``S``, ``N`` (``Decimal``), ``BOOL``, ``NULL``, ``B``, ``M``, ``L``, sets."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return raw
    if kind == "N":
        return DYNAMODB_CONTEXT.create_decimal(raw)
    if kind in ("BOOL", "B"):
        return raw
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attribute_value(v) for k, v in raw.items()}
    if kind == "L":
        return [from_attribute_value(v) for v in raw]
    if kind == "SS":
        return set(raw)
    if kind == "NS":
        return {DYNAMODB_CONTEXT.create_decimal(v) for v in raw}
    raise MetricWriteError(f"unexpected attribute value type {kind!r}")


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
