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
from pipeline.metrics.effects import Add, Effect, ItemKey, Message, PutOnce, Scalar
from pipeline.metrics.numbers import DYNAMODB_CONTEXT
from pipeline.metrics.partials import SPLIT_SUFFIX_MAX_BYTES, SUFFIX_MAX_BYTES, is_partial

__all__ = ["effect_problem", "value_bytes"]

_COUNTER_HEADROOM: Final = 4096
"""Room kept on counter items for their watermarks and counters beyond one effect's attributes."""


def value_bytes(value: Scalar) -> int:
    """What DynamoDB counts for one value (an upper bound for numbers: 21 bytes holds any of them)."""
    if type(value) is str:
        return len(value) if value.isascii() else len(value.encode())
    return _NUMBER_BYTES


_NUMBER_BYTES: Final = 21
_INT_LIMIT: Final = 10**38
_EXPONENTS: Final = range(-130, 126)
_PARTITION_CHARS: Final = DYNAMODB_PARTITION_KEY_BYTES // 4  # no string this short can pass the limit
_SORT_CHARS: Final = DYNAMODB_SORT_KEY_BYTES // 4


def _key_problem(table: str, key: ItemKey) -> str | None:
    for index, (name, value) in enumerate(key):
        if type(value) is not str or len(value) <= (_SORT_CHARS if index else _PARTITION_CHARS):
            continue
        limit = DYNAMODB_SORT_KEY_BYTES if index else DYNAMODB_PARTITION_KEY_BYTES
        if is_partial(table):  # the writer appends the shard's suffix (the key split's, to the partition key)
            limit -= SUFFIX_MAX_BYTES if index else SPLIT_SUFFIX_MAX_BYTES
        if len(value.encode()) > limit:
            role = "sort" if index else "partition"
            return f"{table}.{name} is {len(value.encode()):,} bytes; a DynamoDB {role} key holds at most {limit:,}"
    return None


def _number_problem(table: str, name: str, value: object) -> str | None:
    kind = type(value)
    if kind is int:
        if -_INT_LIMIT < value < _INT_LIMIT:  # type: ignore[operator]
            return None
    elif kind is Decimal:
        try:
            number = DYNAMODB_CONTEXT.create_decimal(value)  # type: ignore[arg-type]
        except ArithmeticError:
            number = None
        if number is not None and number.is_finite() and (not number or number.adjusted() in _EXPONENTS):
            return None
    else:
        return None  # strings are sized, not ranged
    return f"{table}.{name} = {str(value)[:40]} is not a DynamoDB number (38 digits, magnitude 1E-130 to 1E+126)"


def _values_problem(table: str, values: Mapping[str, Scalar]) -> str | None:
    for name, value in values.items():
        if type(value) is not str and (problem := _number_problem(table, name, value)) is not None:
            return problem
    return None


def _item_bytes(item: Mapping[str, Scalar]) -> int:
    return sum(len(name) + value_bytes(value) for name, value in item.items())


def effect_problem(effect: Effect) -> str | None:
    """Why a store would refuse ``effect``, or ``None`` when it fits every limit.

    Cheap on the common case (short keys, a few small values): it runs for every effect of every event.
    """
    if isinstance(effect, Message):
        size = len(orjson.dumps(effect.body, default=str))
        if size > SQS_MESSAGE_BYTES:
            return f"the {effect.queue} message is {size:,} bytes; SQS takes at most {SQS_MESSAGE_BYTES:,}"
        return None
    problem = _key_problem(effect.table, effect.key)
    if problem is not None:
        return problem
    if isinstance(effect, PutOnce):
        values: Mapping[str, Scalar] = effect.item
        limit = DYNAMODB_ITEM_BYTES
    elif isinstance(effect, Add):
        values = effect.amounts
        limit = DYNAMODB_ITEM_BYTES - _COUNTER_HEADROOM
    else:
        values = (
            {effect.attribute: effect.value, **effect.companions}
            if effect.companions
            else {effect.attribute: effect.value}
        )
        limit = DYNAMODB_ITEM_BYTES - _COUNTER_HEADROOM
    problem = _values_problem(effect.table, values)
    if problem is not None:
        return problem
    if len(values) * (_NUMBER_BYTES + 64) < limit // 4 and all(  # a quick bound before the exact size
        type(v) is not str or len(v) < 1024 for v in values.values()
    ):
        return None
    size = _item_bytes(values) + _item_bytes(dict(effect.key))
    if size > limit:
        return f"the {effect.table} item would be {size:,} bytes; a DynamoDB item holds at most {DYNAMODB_ITEM_BYTES:,}"
    return None
