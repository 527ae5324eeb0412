"""Kinesis positions as strings that sort the way the stream does, for watermarks stored on items.

A position is (sequence number, KPL sub-sequence number, NDJSON line). Sequence numbers are decimal
strings of up to 129 digits (too long for a DynamoDB number), so the encoding is length-prefixed:
``LLL<digits>.SSSSSS.IIIIIII`` where ``LLL`` is the digit count. Comparing two encodings as strings
(Python or a DynamoDB condition) compares the positions: fewer digits means a smaller number, and
equal lengths compare digit by digit.
"""

from __future__ import annotations

__all__ = ["encode_position", "first_position_of"]


def encode_position(sequence_number: str, sub_sequence_number: int | None = None, line: int = 0) -> str:
    """The sortable string of a position; ``sub_sequence_number=None`` (not an aggregate) sorts first."""
    digits = sequence_number.lstrip("0") or "0"
    if not digits.isdigit() or len(digits) > 999:
        raise ValueError(f"not a Kinesis sequence number: {sequence_number[:40]!r}")
    sub = 0 if sub_sequence_number is None else sub_sequence_number + 1
    return f"{len(digits):03d}{digits}.{sub:06d}.{line:07d}"


def first_position_of(sequence_number: str) -> str:
    """The smallest position inside the record ``sequence_number`` (before any of its events)."""
    return encode_position(sequence_number, None, 0)
