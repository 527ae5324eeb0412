"""Python values <-> DynamoDB AttributeValues, for the low-level client (no boto3 import).

``str`` -> ``S``; ``int`` and :class:`Decimal` -> ``N``; ``bool`` -> ``BOOL``; ``None`` -> ``NULL``;
``list``/``tuple`` -> ``L``; ``dict`` -> ``M``. ``float`` is refused (money is Decimal). ``N`` comes
back as ``int`` when it is integral text, else as :class:`Decimal`, so counts stay ``int``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pipeline.stores.errors import InvalidEntityError

__all__ = ["from_item", "from_value", "to_item", "to_value"]


def to_value(value: object) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidEntityError(f"{value!r} cannot be stored (not finite)")
        return {"N": str(value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, list | tuple):
        return {"L": [to_value(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_value(v) for k, v in value.items()}}
    raise InvalidEntityError(f"{type(value).__name__} cannot be stored (floats never: money is Decimal)")


def to_item(values: Mapping[str, object]) -> dict[str, Any]:
    return {name: to_value(value) for name, value in values.items()}


def from_value(value: Mapping[str, Any]) -> Any:
    if "S" in value:
        return value["S"]
    if "N" in value:
        text: str = value["N"]
        return int(text) if text.lstrip("-").isdigit() else Decimal(text)
    if "BOOL" in value:
        return bool(value["BOOL"])
    if "NULL" in value:
        return None
    if "L" in value:
        return [from_value(v) for v in value["L"]]
    if "M" in value:
        return {k: from_value(v) for k, v in value["M"].items()}
    if "B" in value:
        return value["B"]
    raise InvalidEntityError(f"unsupported AttributeValue {sorted(value)}")


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: from_value(value) for name, value in item.items()}
