"""Time as stored: one fixed-width UTC stamp per instant, and every time bucket a prefix of it.

Guarantees:

- :func:`stamp` is ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, always 27 characters, for every aware datetime
  whose UTC instant falls in years 1-9999, whatever the input's offset. Comparing two stamps as
  strings (in Python or in a DynamoDB condition) compares the instants, to the microsecond.
- :func:`parse_stamp` inverts it exactly: ``parse_stamp(stamp(t)) == t``.
- Buckets are prefixes of the stamp, so the buckets of one instant always agree with each other and
  with its stamp: :func:`day_of` ``YYYY-MM-DD``, :func:`hour_of` ``YYYY-MM-DD#HH``, :func:`minute_of`
  ``YYYY-MM-DDTHH:MM``. They sort like the times they bucket.
- Naive datetimes are refused with :class:`ValueError` (their instant is unknown), never guessed.

Pure functions of their argument: no clock, no locale, no ``strftime`` (whose ``%Y`` is not padded
for years before 1000 on glibc).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = [
    "STAMP_LENGTH",
    "day_bucket",
    "day_of",
    "epoch_seconds",
    "hour_bucket",
    "hour_of",
    "hour_of_day",
    "minute_bucket",
    "minute_of",
    "parse_stamp",
    "stamp",
]

STAMP_LENGTH: Final = 27
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND: Final = timedelta(seconds=1)


def stamp(when: datetime) -> str:
    """The fixed-width UTC stamp of an aware datetime. Raises ValueError for a naive one."""
    if when.tzinfo is not UTC:
        if when.utcoffset() is None:
            raise ValueError(f"naive datetime {when.isoformat()!r}: its instant is unknown")
        when = when.astimezone(UTC)
    # isoformat pads the year to 4 digits and, with tzinfo=UTC, always ends in "+00:00".
    return when.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_stamp(text: str) -> datetime:
    """The aware UTC datetime of a stamp. Raises ValueError if ``text`` is not one."""
    if len(text) != STAMP_LENGTH or text[-1] != "Z":
        raise ValueError(f"not a fixed-width UTC stamp: {text[:40]!r}")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def epoch_seconds(when: datetime) -> int:
    """Whole seconds since 1970-01-01T00:00:00Z, rounded down (DynamoDB TTL wants an integer)."""
    if when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()!r}: its instant is unknown")
    return (when - _EPOCH) // _SECOND


def day_of(text: str) -> str:
    """``YYYY-MM-DD`` of a stamp."""
    return text[:10]


def hour_of(text: str) -> str:
    """``YYYY-MM-DD#HH`` of a stamp."""
    return f"{text[:10]}#{text[11:13]}"


def hour_of_day(text: str) -> str:
    """``HH`` (``00`` to ``23``) of a stamp."""
    return text[11:13]


def minute_of(text: str) -> str:
    """``YYYY-MM-DDTHH:MM`` of a stamp."""
    return text[:16]


def day_bucket(when: datetime) -> str:
    """``YYYY-MM-DD`` of an aware datetime, in UTC."""
    return day_of(stamp(when))


def hour_bucket(when: datetime) -> str:
    """``YYYY-MM-DD#HH`` of an aware datetime, in UTC."""
    return hour_of(stamp(when))


def minute_bucket(when: datetime) -> str:
    """``YYYY-MM-DDTHH:MM`` of an aware datetime, in UTC."""
    return minute_of(stamp(when))
