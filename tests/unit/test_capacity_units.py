"""DynamoDB capacity units by the billing rules, with the worked examples of AWS's documentation.

Sources: "DynamoDB item sizes and formats" (CapacityUnitCalculations), "DynamoDB read and write
operations" (read-write-operations: 3,500-byte item, 8 KB item, 10 KB item, BatchGetItem of 1.5 KB and
6.5 KB), and the provisioned pricing page's key terms (1 KB, 3 KB and transactional 3 KB writes).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from load.consumer_bench.counting import attribute_bytes, item_bytes
from load.consumer_bench.units import (
    INDEXES,
    MeteredSeedClient,
    MeteredStore,
    index_write_units,
    python_item_bytes,
    query_read_units,
    read_units,
    write_units,
)
from pipeline.metrics.plan import ItemWrite

KB = 1024


@pytest.mark.parametrize(
    ("size", "consistency", "units"),
    [
        pytest.param(3_500, "strong", Decimal(1), id="3500 B rounds up to 4 KB: one unit"),
        pytest.param(8 * KB, "strong", Decimal(2), id="8 KB strongly consistent: 2"),
        pytest.param(8 * KB, "eventual", Decimal(1), id="8 KB eventually consistent: 1"),
        pytest.param(8 * KB, "transactional", Decimal(4), id="8 KB transactional: 4"),
        pytest.param(10 * KB, "strong", Decimal(3), id="10 KB rounds to 12 KB: 3"),
        pytest.param(0, "eventual", Decimal("0.5"), id="a missing item still costs half a unit"),
    ],
)
def test_read_units_follow_the_documented_examples(size: int, consistency: str, units: Decimal) -> None:
    assert read_units(size, consistency) == units


def test_batch_get_rounds_each_item_but_query_rounds_the_sum() -> None:
    # GIVEN the documentation's two items of 1.5 KB and 6.5 KB
    sizes = [int(1.5 * KB), int(6.5 * KB)]
    # THEN BatchGetItem bills 4 KB + 8 KB = 12 KB (3 units), a Query page 8 KB (2 units)
    assert sum(read_units(s) for s in sizes) == 3
    assert query_read_units(sizes) == 2


@pytest.mark.parametrize(
    ("before", "after", "transactional", "units"),
    [
        pytest.param(0, 1 * KB, False, 1, id="1 KB put: 1"),
        pytest.param(0, 3 * KB, False, 3, id="3 KB put: 3"),
        pytest.param(0, 3 * KB, True, 6, id="3 KB transactional put: 6"),
        pytest.param(500, 1_500, False, 2, id="an update is billed on the larger after-image"),
        pytest.param(2_100, 100, False, 3, id="an update that shrinks is billed on the before-image"),
        pytest.param(0, 0, False, 1, id="a failed condition on a missing item still costs 1"),
        pytest.param(1_025, 1_025, False, 2, id="one byte past 1 KB is a second unit"),
    ],
)
def test_write_units_take_the_larger_image_rounded_up(before: int, after: int, transactional: bool, units: int) -> None:
    assert write_units(before, after, transactional=transactional) == units


def test_negative_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="not negative"):
        write_units(-1, 0)
    with pytest.raises(ValueError, match="at least 0"):
        read_units(-1)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        pytest.param({"S": "héllo"}, 6, id="strings by UTF-8 bytes"),
        pytest.param({"N": "1000"}, 2, id="trailing zeroes trimmed: 1 digit, 2 bytes"),
        pytest.param({"N": "123.45"}, 4, id="5 significant digits: 3 + 1 bytes"),
        pytest.param({"B": b"\x00" * 16}, 16, id="binary by raw bytes"),
        pytest.param({"BOOL": True}, 1, id="boolean 1 byte"),
        pytest.param({"M": {"a": {"S": "xy"}}}, 3 + 1 + 1 + 2, id="map: 3 + per element 1 + name + value"),
    ],
)
def test_attribute_sizes_follow_the_item_size_rules(value: dict[str, object], size: int) -> None:
    assert attribute_bytes(value) == size


def test_item_size_counts_names_and_values() -> None:
    assert item_bytes({"id": {"S": "abc"}, "n": {"N": "7"}}) == 2 + 3 + 1 + 2
    assert python_item_bytes({"id": "abc", "n": 7, "b": b"xy"}) == 2 + 3 + 1 + 2 + 1 + 2


def test_metered_store_bills_writes_by_item_images_and_failed_conditions() -> None:
    # GIVEN an insert of a 2 KB item, then an update of it under a watermark that does not hold
    store = MeteredStore()
    key = (("k", "a"),)
    big = "x" * 2_000
    store.execute(ItemWrite("t", key, insert=True, sets={"k": "a", "v": big}))
    stale = ItemWrite("t", key, insert=False, increments={"n": 1}, watermark=("_pos_s", "older"))
    store.execute(stale)
    # THEN both are billed on the 2 KB item (2 units each) and the second is counted as failed
    units = store.units()
    assert units.write_units == {"t": 4}
    assert units.writes == {"t": 2}
    assert units.failed == {"t": 1}
    # AND a read of the item costs one consistent unit, a read of a missing item too
    store.item("t", key)
    store.item("t", (("k", "missing"),))
    assert store.units().read_units == {"t": Decimal(2)}


def test_metered_seed_client_applies_add_and_set_and_bills_each_call() -> None:
    client = MeteredSeedClient({"phys-products": "product_metrics"})
    key = {"product_id": {"S": "p-1"}, "metric_date": {"S": "2026-11-24"}}
    for _ in range(2):
        client.update_item(
            TableName="phys-products",
            Key=key,
            UpdateExpression="ADD view_count :one, #h :one SET last_viewed = :t",
            ExpressionAttributeNames={"#h": "hour_06"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":t": {"S": "2026-11-24T06:00:00Z"}},
        )
    item = client.get_item(TableName="phys-products", Key=key)["Item"]
    assert item["view_count"] == {"N": "2"}
    assert item["hour_06"] == {"N": "2"}
    units = client.units()
    assert units.write_units == {"product_metrics": 2}
    assert units.read_units == {"product_metrics": Decimal("0.5")}


def test_the_product_index_is_billed_on_its_own_entry_when_a_projected_attribute_changes() -> None:
    # GIVEN a product partial entering the day index, then a view added, then a write that leaves it alone
    store = MeteredStore()
    key = (("product_id", "p-1"), ("metric_date", "2026-11-24~0"))
    store.execute(
        ItemWrite(
            "product_metrics",
            key,
            insert=True,
            sets={"product_id": "p-1", "metric_date": "2026-11-24~0", "view_day": "2026-11-24", "view_count": 1},
        )
    )
    store.execute(ItemWrite("product_metrics", key, insert=False, increments={"view_count": 1}))
    store.execute(ItemWrite("product_metrics", key, insert=False, sets={"_pos_s": "9"}))
    # THEN the index costs one unit for the put and one for the change, none for the unprojected write
    units = store.units()
    assert units.write_units == {"product_metrics": 3, "product_metrics/by-view-day": 2}
    assert units.writes == {"product_metrics": 3}


def test_an_index_key_change_is_a_delete_and_a_put_and_leaving_the_index_a_delete() -> None:
    (index,) = INDEXES
    before = {"product_id": "p", "metric_date": "d~0", "view_day": "d", "view_count": 1}
    moved = {**before, "view_day": "e"}
    assert index_write_units(index, before, moved) == 2
    assert index_write_units(index, None, before) == 1
    assert index_write_units(index, before, {"product_id": "p", "metric_date": "d~0"}) == 1
    assert index_write_units(index, before, {**before, "_pos_s": "1"}) == 0
    big = {**before, "view_count": 1, "hour_00": 1, "last_viewed": "x" * 1_500}
    assert index_write_units(index, None, big) == 2
