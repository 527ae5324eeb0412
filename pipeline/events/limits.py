"""What a valid event may hold: every limit in one place, with the rule of AWS or arithmetic it protects.

Validation decides all of these before anything is written, so an event that DynamoDB, S3, SQS or a
sum would refuse later becomes a bad row with its reason now, instead of a function error in the
middle of a batch. The limits are deliberately round and generous for real producers:

==========================  =======================  ===============================================
field                       limit                    because
==========================  =======================  ===============================================
one event's JSON            1 MiB                    Kinesis' record limit, whatever the compression
ids, names, sources, units  1-256 characters         key attributes and item size (DynamoDB)
``event_id``                at most 996 UTF-8 bytes  part of the ``user_activities`` sort key
                                                     (1,024 bytes with the 28-byte time prefix)
``user_id``                 1-256 characters         a partition key; ``""`` is not a DynamoDB key
``data.status``             1-64 characters          part of claim and status-metric keys
``page_url``                8,192 characters         stored on each activity row (400 KB items)
other optional text         2,048 characters         stored on rows and messages
order items                 1-100                    one item per line; SQS messages (256 KiB)
dimensions                  at most 10               and the series key within 2,048 bytes
money, metric values        ``|v| < 10^18``,         every sum of up to ``10^10`` of them is exact
                            at most 10 decimal       in DynamoDB's 38 digits (18 + 10 + 10)
                            places, finite
quantities                  1-10^9                   items sold sums stay exact
``session_duration``        0-10^9 seconds           a duration, not garbage
``timestamp``               UTC in years 1-9989,     the UTC conversion and derived values (buckets,
                            at most ``horizon``      an activity's TTL up to 10 years later) never
                            after arrival            overflow; a clock far ahead is refused
==========================  =======================  ===============================================

The future ``horizon`` is a setting (:class:`ValidationPolicy`, default one day after the record's
arrival in the stream, or after now when the arrival is unknown). It is measured from the arrival,
not the wall clock, so a retried record is judged exactly as on its first delivery.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

__all__ = [
    "DEFAULT_HORIZON",
    "DYNAMODB_ITEM_BYTES",
    "DYNAMODB_PARTITION_KEY_BYTES",
    "DYNAMODB_SORT_KEY_BYTES",
    "LATEST_EVENT_TIME",
    "MAX_ACTIVITY_TTL",
    "MAX_DECIMAL_PLACES",
    "MAX_DIMENSIONS",
    "MAX_EVENT_BYTES",
    "MAX_EVENT_ID_BYTES",
    "MAX_ID_CHARS",
    "MAX_ORDER_ITEMS",
    "MAX_QUANTITY",
    "MAX_SESSION_DURATION_S",
    "MAX_STATUS_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_URL_CHARS",
    "NUMBER_LIMIT",
    "SQS_MESSAGE_BYTES",
    "ValidationPolicy",
]

MAX_EVENT_BYTES: Final = 1024 * 1024
MAX_ID_CHARS: Final = 256
MAX_EVENT_ID_BYTES: Final = 996
MAX_STATUS_CHARS: Final = 64
MAX_URL_CHARS: Final = 8192
MAX_TEXT_CHARS: Final = 2048
MAX_ORDER_ITEMS: Final = 100
MAX_DIMENSIONS: Final = 10
NUMBER_LIMIT: Final = Decimal("1E+18")
"""Money and metric values are strictly below this in absolute value."""
MAX_DECIMAL_PLACES: Final = 10
MAX_QUANTITY: Final = 10**9
MAX_SESSION_DURATION_S: Final = 10**9
MAX_ACTIVITY_TTL: Final = timedelta(days=3660)
"""The longest activity TTL a deployment may set; :data:`LATEST_EVENT_TIME` leaves room for it."""
LATEST_EVENT_TIME: Final = datetime(9989, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
DEFAULT_HORIZON: Final = timedelta(days=1)

DYNAMODB_PARTITION_KEY_BYTES: Final = 2048
DYNAMODB_SORT_KEY_BYTES: Final = 1024
DYNAMODB_ITEM_BYTES: Final = 400 * 1024
SQS_MESSAGE_BYTES: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class ValidationPolicy:
    """The settings of validation: how far in the future (after arrival) an event may be dated."""

    horizon: timedelta = DEFAULT_HORIZON

    def __post_init__(self) -> None:
        if self.horizon < timedelta(0):
            raise ValueError(f"the future horizon must not be negative, got {self.horizon}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ValidationPolicy:
        """``EVENT_TIME_HORIZON_HOURS`` (the template's ``EventTimeHorizonHours``; default 24).

        Raises ``ValueError`` naming the variable when it is not a number of hours from 0 to 8,760.
        """
        env = os.environ if environ is None else environ
        raw = env.get("EVENT_TIME_HORIZON_HOURS", "").strip()
        if not raw:
            return cls()
        try:
            hours = float(raw)
        except ValueError:
            raise ValueError(f"EVENT_TIME_HORIZON_HOURS={raw!r} is not a number of hours") from None
        if not 0 <= hours <= 8760:
            raise ValueError(f"EVENT_TIME_HORIZON_HOURS={raw} is outside 0-8760")
        return cls(horizon=timedelta(hours=hours))

    def not_after(self, arrival: datetime | None) -> datetime:
        """The latest valid event time for a record that arrived at ``arrival`` (``None``: now)."""
        base = arrival if arrival is not None else datetime.now(UTC)
        try:
            latest = base + self.horizon
        except OverflowError:
            return LATEST_EVENT_TIME
        return min(latest, LATEST_EVENT_TIME)
