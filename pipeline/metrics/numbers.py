"""DynamoDB's number type, and sums that stay exact in it or say why they cannot.

DynamoDB keeps 38 significant digits and magnitudes from 1E-130 to below 1E+126. Python's default
decimal context keeps 28 digits and rounds silently; every counter sum in the project goes through
:func:`add_exact` instead, which never rounds: a sum that would leave DynamoDB's precision or range
raises :class:`~pipeline.exceptions.MetricWriteError` naming the counter. Validation keeps money and
metric values to 28 significant digits (below 10^18, at most 10 decimal places), so a counter can
take at least 10^10 of them before that can happen.
"""

from __future__ import annotations

from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Final

from pipeline.exceptions import MetricWriteError

__all__ = ["DYNAMODB_CONTEXT", "Number", "add_exact"]

Number = int | Decimal

DYNAMODB_CONTEXT: Final = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])
"""DynamoDB's number type: 38 significant digits; anything that would round is refused, not rounded."""

_INT_LIMIT: Final = 10**38


def add_exact(a: Number, b: Number, what: str = "counter") -> Number:
    """``a + b`` exactly, in DynamoDB's precision; :class:`MetricWriteError` if that is impossible."""
    if type(a) is int and type(b) is int:
        total = a + b
        if -_INT_LIMIT < total < _INT_LIMIT:
            return total
    try:
        return DYNAMODB_CONTEXT.add(a, b)
    except ArithmeticError as exc:
        raise MetricWriteError(f"{what}: {a} + {b} leaves DynamoDB's 38-digit number precision or range") from exc
