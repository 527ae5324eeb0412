"""Argument types shared by the commands: each refuses a bad value with a message that says what to do.

argparse turns their ``ArgumentTypeError`` into one line (see :func:`tools.cli.main.main`) and exit
status 2.
"""

from __future__ import annotations

import argparse
import math
from urllib.parse import urlsplit

__all__ = ["endpoint_url", "fraction", "non_negative_int", "positive_int", "positive_number"]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number of at least 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {value}")
    return value


def positive_number(text: str) -> float:
    """A finite number above 0 (``100_000`` and ``100,000`` read as 100000)."""
    try:
        value = float(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def endpoint_url(text: str) -> str:
    """An AWS endpoint such as ``http://127.0.0.1:4566``: a scheme, a host and, if given, a valid port."""
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an endpoint URL such as http://127.0.0.1:4566")
    return text
