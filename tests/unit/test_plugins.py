"""What every plugin shares: fixed-width UTC stamps and buckets, the registry, and the properties each
plugin keeps on any events. Each plugin's own rules are in ``test_plugins_<plugin>.py``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.events import Event, EventType
from pipeline.metrics.effects import Add, Effect, Extreme, PutOnce
from pipeline.plugins import REGISTRY, BatchContext, plugins_for
from pipeline.plugins.timefmt import (
    STAMP_LENGTH,
    day_bucket,
    epoch_seconds,
    hour_bucket,
    minute_bucket,
    parse_stamp,
    stamp,
)
from tests.plugin_cases import T0, first_occurrences
from tests.strategies import events, shifted, timestamps
from tools.oracle import apply_effects, expected_messages, expected_tables, messages_of

# --------------------------------------------------------------------------- time formatting


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param(T0, "2026-11-24T10:15:00.250000Z", id="utc"),
        pytest.param(datetime(2026, 11, 24, tzinfo=UTC), "2026-11-24T00:00:00.000000Z", id="whole-second-keeps-width"),
        pytest.param(
            datetime(2026, 11, 25, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2026-11-24T20:00:00.000000Z",
            id="offset-normalised-to-previous-utc-day",
        ),
        pytest.param(datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "0005-01-02T03:04:05.000006Z", id="year-zero-padded"),
    ],
)
def test_stamp_is_fixed_width_utc(when: datetime, expected: str) -> None:
    # GIVEN an aware datetime WHEN stamped THEN the fixed-width UTC text, and buckets are its prefixes
    assert stamp(when) == expected
    assert len(expected) == STAMP_LENGTH
    assert parse_stamp(expected) == when
    assert day_bucket(when) == expected[:10]
    assert hour_bucket(when) == f"{expected[:10]}#{expected[11:13]}"
    assert minute_bucket(when) == expected[:16]


@given(timestamps, timestamps, st.integers(-14 * 60, 14 * 60))
def test_stamps_sort_like_times(a: datetime, b: datetime, offset_minutes: int) -> None:
    # GIVEN two instants, one written in another offset WHEN stamped THEN string order is time order
    sa, sb = stamp(shifted(a, offset_minutes)), stamp(b)
    assert (sa < sb) == (a < b)
    assert (sa == sb) == (a == b)
    assert parse_stamp(sa) == a


def test_naive_times_are_refused_not_guessed() -> None:
    # GIVEN a naive datetime WHEN stamped or turned to epoch seconds THEN ValueError
    with pytest.raises(ValueError, match="naive"):
        stamp(datetime(2026, 11, 24, 10, 0))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="naive"):
        epoch_seconds(datetime(2026, 11, 24, 10, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="stamp"):
        parse_stamp("2026-11-24T10:00:00+00:00")


# --------------------------------------------------------------------------- registry


def test_registry_covers_every_event_type_once() -> None:
    # GIVEN the registry WHEN asked per type THEN exactly one plugin each, with distinct names
    assert len({p.name for p in REGISTRY}) == len(REGISTRY)
    for event_type in EventType:
        (plugin,) = plugins_for(event_type)
        assert event_type in plugin.event_types


@given(st.lists(events(), max_size=12))
@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
def test_plugins_on_any_events(raw: list[Event]) -> None:
    # GIVEN any events (any type, hostile text in every field), deduplicated as the processor does
    stream = first_occurrences(raw)
    context = BatchContext()
    everything: list[Effect] = []
    # WHEN each plugin sees them all
    for plugin in REGISTRY:
        got = plugin.effects(stream, context)
        # THEN one list per event, and a prefix of the batch gets exactly the prefix of the effects
        assert len(got) == len(stream)
        for cut in range(len(stream)):
            assert plugin.effects(stream[:cut], context) == got[:cut]
        # AND nothing for events of other types; never a float in a stored value
        for event, effects in zip(stream, got, strict=True):
            if event.event_type not in plugin.event_types:
                assert effects == []
            for effect in effects:
                values: list[object] = []
                if isinstance(effect, Add):
                    values += effect.amounts.values()
                elif isinstance(effect, PutOnce):
                    values += effect.item.values()
                elif isinstance(effect, Extreme):
                    values += [effect.value, *effect.companions.values()]
                assert all(isinstance(v, str | int | Decimal) and not isinstance(v, bool) for v in values)
            everything.extend(effects)
    # AND as one batch from empty stores, they give the oracle's tables and messages
    assert apply_effects(everything) == expected_tables(raw)
    assert messages_of(everything) == expected_messages(raw)
