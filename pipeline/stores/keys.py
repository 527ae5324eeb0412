"""Keys of the single table: pure functions from ids to ``PK``/``SK`` and index keys.

Layout (one table, ``PK``/``SK``, all strings; ``#`` separates parts, so ids never contain it):

============  ====================  ====================  ==============================================
entity        PK                    SK                    indexes
============  ====================  ====================  ==============================================
user          ``USER#<user_id>``    ``#METADATA``         ``user_segment`` read by the consumer
profile       ``USER#<user_id>``    ``PROFILE``
email claim   ``EMAIL#<email>``     ``#EMAIL``            uniqueness of (normalised) emails
product       ``PRODUCT#<id>``      ``#METADATA``         GSI1 ``CATEGORY#<c>`` / ``PRODUCT#<name>#<id>``
review        ``PRODUCT#<id>``      ``REVIEW#<user_id>``  LSI1 ``REVIEW#<created_at>#<user_id>``
order         ``ORDER#<order_id>``  ``#METADATA``         GSI1 ``USER#<user_id>`` / ``ORDER#<created>#<id>``;
                                                          GSI2 ``ORDER_STATUS#<status>`` / ``<at>#<id>``
order line    ``ORDER#<order_id>``  ``LINE#<product_id>``
============  ====================  ====================  ==============================================

GSI1 is overloaded (a user's orders, newest first; a category's products by name). GSI2 lists the
orders in a status, oldest status change first; a status change moves both its keys. LSI1 orders a
product's reviews by time (one review per user and product is enforced by the review's ``SK``).

Time parts of keys are :func:`time_key` strings: fixed width, UTC, so they sort as time does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

__all__ = [
    "GSI1",
    "GSI2",
    "LINE_PREFIX",
    "LSI1",
    "METADATA",
    "PROFILE",
    "REVIEW_PREFIX",
    "category_partition",
    "email_key",
    "order_key",
    "order_line_key",
    "order_partition",
    "product_key",
    "product_partition",
    "review_key",
    "status_partition",
    "time_key",
    "user_key",
    "user_orders_partition",
    "user_partition",
    "user_profile_key",
    "user_segment_key",
]

GSI1: Final = "GSI1"
GSI2: Final = "GSI2"
LSI1: Final = "LSI1"
METADATA: Final = "#METADATA"
PROFILE: Final = "PROFILE"
LINE_PREFIX: Final = "LINE#"
REVIEW_PREFIX: Final = "REVIEW#"

Key = dict[str, str]


def time_key(when: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC: fixed width, so string order is time order. Aware times only."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: stores take aware UTC times only")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def user_partition(user_id: str) -> str:
    return f"USER#{user_id}"


def user_key(user_id: str) -> Key:
    return {"PK": user_partition(user_id), "SK": METADATA}


def user_segment_key(user_id: str) -> Key:
    """The key of the item holding a user's ``user_segment`` attribute (the user item).

    For the consumer's per-batch read: ``BatchGetItem`` with these keys (at most 100 per call) and
    ``ProjectionExpression="PK, user_segment"``; map ``PK`` back with :func:`user_partition`. A user
    without an item gets the consumer's default segment. Pure: no I/O, no clock.
    """
    return user_key(user_id)


def user_profile_key(user_id: str) -> Key:
    return {"PK": user_partition(user_id), "SK": PROFILE}


def email_key(normalised_email: str) -> Key:
    return {"PK": f"EMAIL#{normalised_email}", "SK": "#EMAIL"}


def product_partition(product_id: str) -> str:
    return f"PRODUCT#{product_id}"


def product_key(product_id: str) -> Key:
    return {"PK": product_partition(product_id), "SK": METADATA}


def category_partition(category: str) -> str:
    return f"CATEGORY#{category}"


def review_key(product_id: str, user_id: str) -> Key:
    return {"PK": product_partition(product_id), "SK": f"{REVIEW_PREFIX}{user_id}"}


def order_partition(order_id: str) -> str:
    return f"ORDER#{order_id}"


def order_key(order_id: str) -> Key:
    return {"PK": order_partition(order_id), "SK": METADATA}


def order_line_key(order_id: str, product_id: str) -> Key:
    return {"PK": order_partition(order_id), "SK": f"{LINE_PREFIX}{product_id}"}


def user_orders_partition(user_id: str) -> str:
    """GSI1 partition of a user's orders."""
    return f"USER#{user_id}"


def status_partition(status: str) -> str:
    """GSI2 partition of the orders in ``status``."""
    return f"ORDER_STATUS#{status}"
