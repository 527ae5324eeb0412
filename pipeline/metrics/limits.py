"""Store limits checked on effects before anything is written: a key, an item or a message too big.

Validation (:mod:`pipeline.events.limits`) keeps every effect of the registered plugins within these
limits; this is the second line, for any plugin: an effect that DynamoDB or SQS would refuse makes
its event a bad row with the reason, instead of failing the batch at write time.

Sizes follow DynamoDB's rules: a string counts its UTF-8 bytes, a number about one byte per two
significant digits plus one, an attribute also counts its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Final

import orjson

from pipeline.events.limits import (
    DYNAMODB_ITEM_BYTES,
    DYNAMODB_PARTITION_KEY_BYTES,
    DYNAMODB_SORT_KEY_BYTES,
    SQS_MESSAGE_BYTES,
)
from pipeline.metrics.effects import Add, Effect, Extreme, ItemKey, Message, PutOnce, Scalar
from pipeline.metrics.numbers import DYNAMODB_CONTEXT

__all__ = ["effect_problem", "value_bytes"]

_COUNTER_HEADROOM: Final = 4096
"""Room kept on counter items for their watermarks and counters beyond one effect's attributes."""


def value_bytes(value: Scalar) -> int:
    """What DynamoDB counts for one value."""
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode())
    digits = len(str(abs(value)).replace(".", "").lstrip("0")) if isinstance(value, Decimal) else len(str(abs(value)))
    return digits // 2 + 2


def _key_problem(table: str, key: ItemKey) -> str | None:
    for index, (name, value) in enumerate(key):
        limit = DYNAMODB_PARTITION_KEY_BYTES if index == 0 else DYNAMODB_SORT_KEY_BYTES
        if isinstance(value, str) and len(value) * 4 > limit and len(value.encode()) > limit:
            role = "partition" if index == 0 else "sort"
            return f"{table}.{name} is {len(value.encode()):,} bytes; a DynamoDB {role} key holds at most {limit:,}"
    return None


def _number_problem(table: str, name: str, value: Scalar) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    try:
        number = DYNAMODB_CONTEXT.create_decimal(value)
    except ArithmeticError:
        return f"{table}.{name} = {str(value)[:40]} is not a DynamoDB number (38 digits, magnitude 1E-130 to 1E+126)"
    if not number.is_finite():
        return f"{table}.{name} is not a finite number"
    return None


def _item_bytes(item: Mapping[str, Scalar]) -> int:
    return sum(len(name) + value_bytes(value) for name, value in item.items())


def effect_problem(effect: Effect) -> str | None:
    """Why a store would refuse ``effect``, or ``None`` when it fits every limit."""
    if isinstance(effect, Message):
        size = len(orjson.dumps(effect.body, default=str))
        if size > SQS_MESSAGE_BYTES:
            return f"the {effect.queue} message is {size:,} bytes; SQS takes at most {SQS_MESSAGE_BYTES:,}"
        return None
    problem = _key_problem(effect.table, effect.key)
    if problem is not None:
        return problem
    if isinstance(effect, PutOnce):
        size = _item_bytes(effect.item)
        if size > DYNAMODB_ITEM_BYTES:
            return f"the {effect.table} item is {size:,} bytes; a DynamoDB item holds at most {DYNAMODB_ITEM_BYTES:,}"
        for name, value in effect.item.items():
            if (problem := _number_problem(effect.table, name, value)) is not None:
                return problem
        return None
    if isinstance(effect, Add):
        values: Mapping[str, Scalar] = effect.amounts
    else:
        values = {effect.attribute: effect.value, **effect.companions}
    for name, value in values.items():
        if (problem := _number_problem(effect.table, name, value)) is not None:
            return problem
    size = _item_bytes(dict(effect.key)) + _item_bytes(values)
    if isinstance(effect, Extreme | Add) and size + _COUNTER_HEADROOM > DYNAMODB_ITEM_BYTES:
        return f"the {effect.table} item would pass {DYNAMODB_ITEM_BYTES:,} bytes"
    return None
