"""The PartiQL the writer sends: every name quoted, every value a typed parameter, no ``OR``."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipeline.metrics.effects import Add, Extreme
from pipeline.metrics.plan import ItemWrite, MetricWriteError, Positioned, coalesce, plan_write
from pipeline.metrics.statements import item_statement, to_attribute_value
from tests.metric_streams import SHARD, pos
from tools.memory import MemoryStore

_KEY = (("user_id", "u1"), ("timestamp", "2026-11-24T10:00:00Z"))


def test_insert_quotes_names_and_parameterises_values() -> None:
    write = ItemWrite("t", _KEY, insert=True, sets={**dict(_KEY), "it's": Decimal("1.50"), "n": 2})

    request = item_statement("prod-table", write)

    assert request["Statement"] == (
        "INSERT INTO \"prod-table\" VALUE {'user_id': ?, 'timestamp': ?, 'it''s': ?, 'n': ?}"
    )
    assert request["Parameters"] == [
        {"S": "u1"},
        {"S": "2026-11-24T10:00:00Z"},
        {"N": "1.50"},
        {"N": "2"},
    ]


def test_update_states_every_belief_as_a_condition() -> None:
    # GIVEN an item known with counter "n", the watermark at position 1, and a maximum of 5
    state = {**dict(_KEY), "n": 1, f"_pos_{SHARD}": pos(1), "max": 5}
    effects = coalesce(
        [
            _at(2, Add("t", _KEY, {"n": 2, "new": Decimal("0.5")})),
            _at(3, Add("t", _KEY, {"n": 1})),
            _at(3, Extreme("t", _KEY, "max", 9, companions={"who": "x"})),
            _at(3, Extreme("t", _KEY, "min", 4, kind="min")),
        ]
    )
    write = plan_write(effects.items[("t", _KEY)], SHARD, state)
    assert write is not None

    request = item_statement("tbl", write)

    assert request["Statement"] == (
        'UPDATE "tbl" SET "n" = "n" + ?, "new" = ?, "max" = ?, "who" = ?, "min" = ?, "_pos_shardId-000000000000" = ? '
        'WHERE "user_id" = ? AND "timestamp" = ? AND "_pos_shardId-000000000000" = ? '
        'AND "n" IS NOT MISSING AND "min" IS MISSING AND "new" IS MISSING AND "max" < ?'
    )
    assert request["Parameters"] == [
        {"N": "3"},
        {"N": "0.5"},
        {"N": "9"},
        {"S": "x"},
        {"N": "4"},
        {"S": pos(3)},
        {"S": "u1"},
        {"S": "2026-11-24T10:00:00Z"},
        {"S": pos(1)},
        {"N": "9"},
    ]
    assert request["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    assert " OR " not in request["Statement"]


def test_a_missing_watermark_is_conditioned_as_missing() -> None:
    plan = coalesce([_at(1, Add("t", _KEY, {"n": 1}))]).items[("t", _KEY)]
    write = plan_write(plan, SHARD, {**dict(_KEY), "n": 7})
    assert write is not None

    assert '"_pos_shardId-000000000000" IS MISSING' in item_statement("tbl", write)["Statement"]


def test_the_memory_store_decides_as_the_statement_says() -> None:
    # GIVEN the write above computed from a stale belief (the watermark moved on since)
    store = MemoryStore()
    store.put("t", _KEY, {**dict(_KEY), "n": 7, f"_pos_{SHARD}": pos(5)})
    plan = coalesce([_at(6, Add("t", _KEY, {"n": 1}))]).items[("t", _KEY)]
    write = plan_write(plan, SHARD, {**dict(_KEY), "n": 7, f"_pos_{SHARD}": pos(4)})
    assert write is not None

    # WHEN executed, THEN the condition fails and returns the stored item, which is left unchanged
    result = store.execute(write)
    assert result.outcome.value == "ConditionalCheckFailed"
    assert result.item == store.item("t", _KEY)
    assert store.item("t", _KEY) == {**dict(_KEY), "n": 7, f"_pos_{SHARD}": pos(5)}


@pytest.mark.parametrize("value", [1.5, True, None, b"x", Decimal("1e400")])
def test_only_int_decimal_and_str_values(value: object) -> None:
    with pytest.raises(MetricWriteError):
        to_attribute_value(value)  # type: ignore[arg-type]


def _at(i: int, effect: Add | Extreme) -> Positioned:
    return Positioned(pos(i), effect)
