"""Per-shard partial items: keys that keep the readers' key conditions right, the one merge, and many
shards writing the same hot items exactly once with one watermark per stored item."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.consumer.config import ConsumerConfig
from pipeline.exceptions import ConfigurationError, MetricWriteError
from pipeline.metrics.effects import Add, Extreme
from pipeline.metrics.limits import effect_problem
from pipeline.metrics.partials import (
    index_attributes,
    logical_key,
    merge_items,
    partial_effect,
    partial_key,
    partition_values,
    shard_suffix,
    upper_bound,
)
from pipeline.metrics.plan import WATERMARK_PREFIX, Positioned
from tests.metric_streams import batches, expected_tables, flushed, order_key, pos, sample_stream
from tools.memory import MemoryMetricWriter, MemoryStore

_SHARD_IDS = st.integers(0, 10**12 - 1).map(lambda n: f"shardId-{n:012d}")


@pytest.mark.parametrize(
    ("shard_id", "suffix"),
    [
        pytest.param("shardId-000000000007", "~7", id="kinesis-id"),
        pytest.param("shardId-000000000000", "~0", id="shard-zero"),
        pytest.param("shardId-000000001234", "~1234", id="large-ordinal"),
    ],
)
def test_the_suffix_is_the_shard_ordinal(shard_id: str, suffix: str) -> None:
    assert shard_suffix(shard_id) == suffix
    assert partial_key("order_metrics", order_key("2026-11-24#10"), shard_id) == order_key(f"2026-11-24#10{suffix}")


def test_a_sort_key_that_would_pass_the_limit_only_with_its_suffix_is_refused_before_writing() -> None:
    # GIVEN sort keys of 1,011 and 1,012 bytes: with the longest suffix (13 bytes), 1,024 and 1,025
    fits, too_long = (Add("order_metrics", order_key("d" * n), {"n": 1}) for n in (1_011, 1_012))
    # THEN the second makes its event a bad row (effect_problem), not a write DynamoDB refuses
    assert effect_problem(fits) is None
    assert (
        effect_problem(too_long) == "order_metrics.time_bucket is 1,012 bytes; a DynamoDB sort key holds at most 1,011"
    )
    # AND no shard id makes a longer suffix
    assert len(shard_suffix("shardId-999999999999")) == 13
    assert max(len(shard_suffix(other)) for other in ("shardId-0000000000000007", "s", "x" * 99)) <= 13


def test_tables_that_are_not_partial_keep_their_keys() -> None:
    user = (("user_id", "u1"),)
    assert partial_key("user_sessions", user, "shardId-000000000003") == user
    effect = Extreme("user_sessions", user, "last_activity", "2026-11-24", companions={"started": "x"})
    assert partial_effect(effect, "shardId-000000000003") is effect


@settings(max_examples=200, deadline=None)
@given(shard_id=_SHARD_IDS, day=st.dates(), hour=st.integers(0, 23), other=st.dates())
def test_key_conditions_still_select_a_buckets_partials(shard_id: str, day: date, hour: int, other: date) -> None:
    # GIVEN the partial of an hourly and of a daily bucket
    hourly = partial_key("order_metrics", order_key(f"{day}#{hour:02d}"), shard_id)[1][1]
    daily = partial_key("product_metrics", (("product_id", "p"), ("metric_date", str(day))), shard_id)[1][1]
    assert isinstance(hourly, str) and isinstance(daily, str)

    # THEN begins_with on the day selects the hourly partial, and only on its own day
    assert hourly.startswith(f"{day}#")
    assert hourly.startswith(f"{other}#") == (other == day)
    # AND BETWEEN a day and upper_bound(the day) selects the daily partial and not a neighbour day's
    assert str(day) <= daily <= upper_bound(str(day))
    assert (str(other) <= daily <= upper_bound(str(other))) == (other == day)
    # AND the logical key comes back
    assert logical_key("order_metrics", order_key(hourly)) == order_key(f"{day}#{hour:02d}")


def test_merge_sums_counters_takes_extremes_drops_watermarks_and_reads_legacy_items() -> None:
    # GIVEN two shards' partials of one product-day and an item written before partials existed
    stored = [
        {
            "product_id": "p1",
            "metric_date": "2026-11-24~3",
            "view_day": "2026-11-24",
            "view_count": 2,
            "hour_10": 2,
            "last_viewed": "2026-11-24T10:05:00Z",
            f"{WATERMARK_PREFIX}shardId-000000000003": "0003",
        },
        {
            "product_id": "p1",
            "metric_date": "2026-11-24~12",
            "view_day": "2026-11-24",
            "view_count": Decimal(5),
            "hour_11": 5,
            "last_viewed": "2026-11-24T11:59:00Z",
            f"{WATERMARK_PREFIX}shardId-000000000012": "0012",
        },
        {
            "product_id": "p1",
            "metric_date": "2026-11-24",
            "view_count": 1,
            "hour_10": 1,
            "last_viewed": "2026-11-24T09Z",
        },
        {"product_id": "p1", "metric_date": "2026-11-25~3", "view_count": 1, "hour_00": 1},
    ]

    # WHEN merged
    merged = merge_items("product_metrics", stored)

    # THEN one logical item per product-day: counters summed, last_viewed the max, no writer attributes
    assert merged == {
        (("product_id", "p1"), ("metric_date", "2026-11-24")): {
            "product_id": "p1",
            "metric_date": "2026-11-24",
            "view_count": 8,
            "hour_10": 3,
            "hour_11": 5,
            "last_viewed": "2026-11-24T11:59:00Z",
        },
        (("product_id", "p1"), ("metric_date", "2026-11-25")): {
            "product_id": "p1",
            "metric_date": "2026-11-25",
            "view_count": 1,
            "hour_00": 1,
        },
    }


def test_min_and_max_of_system_metrics_merge_by_kind() -> None:
    key = {"metric_key": "latency"}
    stored = [
        {**key, "minute": "2026-11-24T10:00~1", "count": 1, "sum": Decimal("2.5"), "max": Decimal("2.5"), "min": 2},
        {**key, "minute": "2026-11-24T10:00~2", "count": 2, "sum": Decimal(9), "max": 7, "min": Decimal("1.5")},
    ]
    (item,) = merge_items("system_metrics", stored).values()
    assert item == {**key, "minute": "2026-11-24T10:00", "count": 3, "sum": Decimal("11.5"), "max": 7, "min": 1.5}


@pytest.mark.parametrize(
    "effect",
    [
        pytest.param(Extreme("order_metrics", order_key("b"), "max_total", 1), id="undeclared"),
        pytest.param(Extreme("system_metrics", (("metric_key", "k"), ("minute", "m")), "max", 1, "min"), id="kind"),
        pytest.param(
            Extreme(
                "product_metrics", (("product_id", "p"), ("metric_date", "d")), "last_viewed", "t", "max", {"a": 1}
            ),
            id="companions",
        ),
    ],
)
def test_an_extreme_the_merge_could_not_read_is_refused(effect: Extreme) -> None:
    with pytest.raises(MetricWriteError, match=r"declared in TableSpec\.extremes"):
        partial_effect(effect, "shardId-000000000001")


def test_many_shards_on_the_same_hot_items_store_one_watermark_per_partial_and_merge_exactly() -> None:
    # GIVEN 40 shards each writing counters and extremes to the same 4 hot items, some batches resent
    shards = [f"shardId-{n:012d}" for n in range(40)]
    streams = {shard: sample_stream(30, start=1000 * n) for n, shard in enumerate(shards)}
    store = MemoryStore()
    for shard, stream in streams.items():
        writer = MemoryMetricWriter(store)
        for batch in batches(stream, 10):
            assert flushed(writer, shard, batch).failed_from is None
        assert flushed(MemoryMetricWriter(store), shard, stream[: len(stream) // 2]).failed_from is None  # resent

    # THEN each shard has its own partial of each hot item; a counter item's carries one watermark,
    # its own shard's (the system metric items here hold extremes only: no watermark at all)
    stored = store.snapshot(watermarks=True)
    partial_items = {ref: item for ref, item in stored.items() if ref[0] in ("order_metrics", "system_metrics")}
    assert len(partial_items) == 40 * 8
    for (table, key), item in partial_items.items():
        watermarks = [name.removeprefix(WATERMARK_PREFIX) for name in item if name.startswith(WATERMARK_PREFIX)]
        assert len(watermarks) == (1 if table == "order_metrics" else 0)
        assert all(shard_suffix(shard) == "~" + str(key[-1][1]).rsplit("~")[-1] for shard in watermarks)
    # AND the merged tables are the naive fold of every shard's effects, once each
    everything = [p for stream in streams.values() for p in stream]
    assert store.tables() == expected_tables(everything)


def test_a_partial_product_item_carries_its_plain_day_for_the_index() -> None:
    key = (("product_id", "p1"), ("metric_date", "2026-11-24"))
    store = MemoryStore()
    effects = [Positioned(pos(1), Add("product_metrics", key, {"view_count": 1}))]
    flushed(MemoryMetricWriter(store), "shardId-000000000009", effects)
    assert store.item("product_metrics", partial_key("product_metrics", key, "shardId-000000000009")) == {
        "product_id": "p1",
        "metric_date": "2026-11-24~9",
        "view_day": "2026-11-24",
        "view_count": 1,
        f"{WATERMARK_PREFIX}shardId-000000000009": pos(1),
    }


def test_a_key_split_spreads_a_hot_items_partials_over_k_partition_keys_and_merges_exactly() -> None:
    # GIVEN 12 shards writing the same hot items with the partition keys split 3 ways
    streams = {f"shardId-{n:012d}": sample_stream(20, start=1000 * n) for n in range(12)}
    store = MemoryStore()
    for shard, stream in streams.items():
        assert flushed(MemoryMetricWriter(store, key_split=3), shard, stream).failed_from is None

    # THEN the order partials sit on 3 partition keys, shard n's on "~<n mod 3>"
    orders = [key for table, key in store.snapshot() if table == "order_metrics"]
    assert {key[0][1] for key in orders} == {"hourly_orders~0", "hourly_orders~1", "hourly_orders~2"}
    assert all(int(str(k[0][1])[-1]) == int(str(k[1][1]).rsplit("~")[-1]) % 3 for k in orders)
    # AND merged with the same split they are the naive fold of every shard's effects
    assert store.tables(3) == expected_tables([p for stream in streams.values() for p in stream])
    assert partition_values("order_metrics", "hourly_orders", 3) == [f"hourly_orders~{k}" for k in range(3)]
    assert partition_values("user_sessions", "u1", 3) == ["u1"]


@pytest.mark.parametrize(
    ("raw", "split"),
    [
        pytest.param("", 1, id="unset"),
        pytest.param("3", 3, id="three"),
        pytest.param("0", None, id="zero"),
        pytest.param("1.5", None, id="fraction"),
        pytest.param("x", None, id="text"),
    ],
)
def test_the_consumer_reads_its_key_split_from_the_template_parameter(raw: str, split: int | None) -> None:
    env = {"METRIC_KEY_SPLIT": raw}
    if split is None:
        with pytest.raises(ConfigurationError, match="METRIC_KEY_SPLIT"):
            ConsumerConfig.from_env(env)
    else:
        assert ConsumerConfig.from_env(env).key_split == split


def test_with_a_key_split_the_index_day_is_split_as_the_partition_key_is() -> None:
    # GIVEN shard 7's partial of a product-day with the key split 3 ways (7 mod 3 = 1)
    logical = (("product_id", "p-1"), ("metric_date", "2026-11-24"))
    key = partial_key("product_metrics", logical, "shardId-000000000007", 3)
    assert key == (("product_id", "p-1~1"), ("metric_date", "2026-11-24~7"))
    # THEN its index day carries the same split suffix, and without a split the plain day
    assert index_attributes("product_metrics", key, "shardId-000000000007", 3) == {"view_day": "2026-11-24~1"}
    plain = partial_key("product_metrics", logical, "shardId-000000000007")
    assert index_attributes("product_metrics", plain, "shardId-000000000007") == {"view_day": "2026-11-24"}
    assert index_attributes("order_metrics", (("metric_type", "daily_orders"), ("time_bucket", "d~7")), "s", 3) == {}
    # AND the writer creates the partial with it
    store = MemoryStore()
    view = Positioned(pos(1), Add("product_metrics", logical, {"view_count": 1}))
    assert flushed(MemoryMetricWriter(store, key_split=3), "shardId-000000000007", [view]).failed_from is None
    stored = store.item("product_metrics", key)
    assert stored is not None and stored["view_day"] == "2026-11-24~1"
