"""Hypothesis strategies for valid events and for hostile record bytes, shared by the test tiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from pipeline.events import (
    Event,
    EventData,
    EventType,
    OrderData,
    OrderItem,
    ProductViewData,
    SystemMetricData,
    UserActivityData,
    new_event,
)

__all__ = ["events", "money", "texts"]

texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)
"""Any non-empty Unicode text orjson can carry (no lone surrogates)."""
opt_texts = st.none() | st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
money = st.decimals(min_value=0, max_value=Decimal("1e9"), places=2, allow_nan=False, allow_infinity=False)
measure = st.decimals(
    min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=4, allow_nan=False, allow_infinity=False
)
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).replace(tzinfo=None)  # hypothesis bounds are naive by its API
_LATEST = datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)  # valid events are not in the future
timestamps = st.datetimes(min_value=_EARLIEST, max_value=_LATEST, timezones=st.just(UTC))

order_items = st.builds(OrderItem, texts, st.integers(1, 1000), money)
statuses = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).filter(str.strip)
order_data = st.builds(OrderData, texts, money, st.lists(order_items, min_size=1, max_size=5).map(tuple), statuses)
product_view_data = st.builds(
    ProductViewData,
    texts,
    opt_texts,
    opt_texts,
    st.none() | st.integers(0, 10**9) | st.floats(0, 1e9, allow_nan=False, allow_infinity=False),
)
user_activity_data = st.builds(UserActivityData, texts, opt_texts, opt_texts)
system_metric_data = st.builds(
    SystemMetricData, texts, measure, texts, st.dictionaries(texts, opt_texts.filter(bool), max_size=5)
)

_DATA: dict[EventType, st.SearchStrategy[EventData]] = {
    EventType.ORDER_EVENT: order_data,
    EventType.PRODUCT_VIEW: product_view_data,
    EventType.USER_ACTIVITY: user_activity_data,
    EventType.SYSTEM_METRIC: system_metric_data,
}


@st.composite
def events(draw: st.DrawFn, types: tuple[EventType, ...] = tuple(EventType)) -> Event:
    """A valid event of any type, with hostile-but-legal text in every string field."""
    event_type = draw(st.sampled_from(types))
    user = draw(texts) if event_type is EventType.USER_ACTIVITY else draw(st.none() | texts)
    return new_event(
        event_id=draw(texts),
        timestamp=draw(timestamps),
        source=draw(texts),
        data=draw(_DATA[event_type]),
        user_id=user,
        event_subtype=draw(st.none() | texts),
    )


def shifted(when: datetime, minutes: int) -> datetime:
    """``when`` expressed in another UTC offset (same instant)."""
    from datetime import timezone

    return when.astimezone(timezone(timedelta(minutes=minutes)))
