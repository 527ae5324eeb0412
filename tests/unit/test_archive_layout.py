"""The archive's key layout: prefixes as Firehose evaluates them, keys parsed back, object names."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.archive.layout import (
    FIREHOSE_ERROR_PREFIX,
    FIREHOSE_PREFIX,
    PARTITION_KEYS,
    ArchiveKey,
    Partition,
    error_prefix,
    evaluate_prefix,
    firehose_object_name,
    parse_key,
    split_object_name,
)
from pipeline.events import Event, EventType, UserActivityData, new_event
from tests.strategies import events

WHEN = datetime(2026, 11, 24, 23, 5, 9, tzinfo=UTC)
partitions = st.builds(Partition, st.dates(date(2000, 1, 1), date(2099, 12, 31)), st.sampled_from(EventType))
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=60)


def test_the_partition_is_the_event_type_and_its_utc_date() -> None:
    # GIVEN an event stamped 23:30 at UTC-05:00, which is 04:30 the next day in UTC
    late = datetime(2026, 11, 24, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    event = new_event(event_id="e", timestamp=late, source="web", data=UserActivityData("click"), user_id="u")
    # THEN it is archived under the UTC date
    partition = Partition.of(event)
    assert partition == Partition(date(2026, 11, 25), EventType.USER_ACTIVITY)
    assert partition.keys() == {"event_type": "user_activity", "dt": "2026-11-25"}
    assert tuple(partition.keys()) == PARTITION_KEYS
    assert partition.prefix == "events/event_type=user_activity/dt=2026-11-25/"


@given(partitions)
def test_the_firehose_prefix_evaluated_with_the_keys_is_the_partition_prefix(partition: Partition) -> None:
    assert evaluate_prefix(FIREHOSE_PREFIX, WHEN, partition.keys()) == partition.prefix
    assert Partition.from_keys(partition.keys()) == partition


@given(partitions, names)
def test_keys_parse_back_to_their_partition_and_name(partition: Partition, name: str) -> None:
    assert parse_key(partition.prefix + name) == ArchiveKey(partition, name)


@given(events())
def test_every_event_has_a_partition_whose_prefix_parses(event: Event) -> None:
    partition = Partition.of(event)
    parsed = parse_key(partition.prefix + "x.gz")
    assert parsed is not None
    assert parsed.partition == partition


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("errors/processing-failed/2026/11/24/x.gz", id="error-object"),
        pytest.param("events/event_type=teleport/dt=2026-11-24/x.gz", id="unknown-type"),
        pytest.param("events/event_type=order_event/dt=2026-13-01/x.gz", id="bad-date"),
        pytest.param("events/event_type=order_event/dt=2026-11-24/", id="no-name"),
        pytest.param("bad-rows/dt=2026-11-24/s/1.json", id="bad-rows"),
    ],
)
def test_keys_that_are_not_event_objects_parse_to_none(key: str) -> None:
    assert parse_key(key) is None


def test_a_key_with_more_folders_after_the_date_still_parses() -> None:
    # Firehose appends yyyy/MM/dd/HH/ to a prefix without a timestamp expression in some configurations
    parsed = parse_key("events/event_type=order_event/dt=2026-11-24/2026/11/25/09/archive-1-x.gz")
    assert parsed == ArchiveKey(Partition(date(2026, 11, 24), EventType.ORDER_EVENT), "2026/11/25/09/archive-1-x.gz")


def test_the_error_prefix_is_the_error_type_and_the_arrival_date() -> None:
    assert error_prefix(WHEN) == "errors/processing-failed/2026/11/24/"
    assert evaluate_prefix(FIREHOSE_ERROR_PREFIX, WHEN, error_output_type="format-conversion-failed") == (
        "errors/format-conversion-failed/2026/11/24/"
    )
    # the arrival is taken in UTC whatever its offset
    assert error_prefix(WHEN.astimezone(timezone(timedelta(hours=9)))) == "errors/processing-failed/2026/11/24/"


def test_timestamp_patterns_follow_javas_formatter() -> None:
    assert evaluate_prefix("y=!{timestamp:yyyy}/!{timestamp:'h='HH'm='mm}/", WHEN) == "y=2026/h=23m=05/"
    with pytest.raises(ValueError, match="unsupported"):
        evaluate_prefix("!{timestamp:EEE}", WHEN)


@pytest.mark.parametrize(
    ("template", "keys"),
    [
        pytest.param(FIREHOSE_PREFIX, {"event_type": "order_event"}, id="missing-key"),
        pytest.param(FIREHOSE_PREFIX, None, id="no-keys"),
        pytest.param("!{partitionKeyFromQuery:x}/", {"x": "1"}, id="other-namespace"),
        pytest.param(FIREHOSE_ERROR_PREFIX, None, id="error-type-outside-the-error-prefix"),
    ],
)
def test_an_expression_that_cannot_be_evaluated_is_refused(template: str, keys: dict[str, str] | None) -> None:
    with pytest.raises(ValueError, match="cannot evaluate"):
        evaluate_prefix(template, WHEN, keys)


def test_firehose_object_names_are_firehoses_format_and_deterministic() -> None:
    name = firehose_object_name("event-pipeline-dev-archive", WHEN, "events/x|r1")
    assert re.fullmatch(r"event-pipeline-dev-archive-1-2026-11-24-23-05-09-[0-9a-f-]{36}\.gz", name)
    assert name == firehose_object_name("event-pipeline-dev-archive", WHEN, "events/x|r1")
    assert name != firehose_object_name("event-pipeline-dev-archive", WHEN, "events/x|r2")


def test_split_object_names_are_the_record_position_made_safe_for_keys() -> None:
    assert split_object_name("rid", "shardId-000000000001", "4959", 3) == "split-shardId-000000000001-4959-3.gz"
    assert split_object_name("rid", "shardId-000000000001", "4959") == "split-shardId-000000000001-4959-x.gz"
    assert split_object_name("a/b c:d") == "split-a_b_c_d.gz"
