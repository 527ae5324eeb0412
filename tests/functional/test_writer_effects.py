"""The DynamoDB metric writer against the emulator, effect by effect: extremes never move backwards,
the first put-once row wins, messages are deduplicated."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from pipeline.metrics.effects import Extreme, Message, PutOnce
from pipeline.metrics.plan import Positioned
from tests.metric_streams import SHARD, flushed, pos
from tests.writer_stores import Stores

if TYPE_CHECKING:
    pass


pytestmark = pytest.mark.emulator


def test_extremes_never_move_backwards(stores: Stores) -> None:
    # GIVEN a stored maximum (with its companion) and minimum (on a table that is not partial:
    # partial tables allow no companions, see tests/unit/test_partials.py)
    key = (("user_id", "extremes"), ("timestamp", "b"))
    first = [
        Positioned(pos(1), Extreme("user_activities", key, "max_total", Decimal("10.5"), companions={"who": "a"})),
        Positioned(pos(1), Extreme("user_activities", key, "min_total", 3, kind="min")),
        Positioned(pos(1), Extreme("user_sessions", (("user_id", "u"),), "last", "2026-11-24T10:00:00Z")),
    ]
    assert flushed(stores.writer(), SHARD, first).failed_from is None

    # WHEN a new container flushes worse values, and then better ones
    worse = [
        Positioned(pos(2), Extreme("user_activities", key, "max_total", Decimal("10.49"), companions={"who": "b"})),
        Positioned(pos(2), Extreme("user_activities", key, "min_total", 4, kind="min")),
        Positioned(pos(2), Extreme("user_sessions", (("user_id", "u"),), "last", "2026-11-24T09:59:59Z")),
    ]
    not_written = flushed(stores.writer(), SHARD, worse)
    stored = stores.tables()
    better = [
        Positioned(pos(3), Extreme("user_activities", key, "max_total", 11, companions={"who": "c"})),
        Positioned(pos(3), Extreme("user_activities", key, "min_total", Decimal("2.5"), kind="min")),
    ]
    assert flushed(stores.writer(), SHARD, better).failed_from is None

    # THEN the worse values changed nothing (and were not even sent), the better ones won
    assert not_written.stats.item_writes == 0
    assert stored["user_activities"][key] == {**dict(key), "max_total": Decimal("10.5"), "who": "a", "min_total": 3}
    assert stored["user_sessions"][(("user_id", "u"),)]["last"] == "2026-11-24T10:00:00Z"
    assert stores.tables()["user_activities"][key] == {
        **dict(key),
        "max_total": 11,
        "who": "c",
        "min_total": Decimal("2.5"),
    }


def test_put_once_first_wins(stores: Stores) -> None:
    # GIVEN two puts of a row in one batch, the later position listed first
    key = (("user_id", "u1"), ("timestamp", "2026-11-24T10:00:00Z"))
    row = {**dict(key), "activity": "first"}
    batch = [
        Positioned(pos(2), PutOnce("user_activities", key, {**row, "activity": "second"})),
        Positioned(pos(1), PutOnce("user_activities", key, row)),
    ]
    assert flushed(stores.writer(), SHARD, batch).failed_from is None

    # WHEN a new container puts the row again
    again = flushed(
        stores.writer(), SHARD, [Positioned(pos(3), PutOnce("user_activities", key, {**row, "activity": "x"}))]
    )

    # THEN the first event's row stays: the insert was refused as a duplicate, which is success
    assert again.failed_from is None
    assert stores.tables()["user_activities"] == {key: row}


def test_messages_are_deduplicated(stores: Stores) -> None:
    # GIVEN fulfilment messages repeating deduplication ids, within a batch and across containers
    stream = [
        Positioned(pos(i), Message("fulfilment", {"n": i, "total": Decimal("9.90")}, f"o{i % 12}", f"g{i % 3}"))
        for i in range(30)
    ]

    # WHEN flushed twice, each time by a new container
    first = flushed(stores.writer(), SHARD, stream)
    second = flushed(stores.writer(), SHARD, stream)

    # THEN the queue holds each id once, with its first event's body, exact decimals as strings
    assert (first.failed_from, second.failed_from) == (None, None)
    assert (first.stats.api_calls, first.stats.messages) == (2, 12)
    assert stores.messages() == {f"o{i}": {"n": i, "total": "9.90"} for i in range(12)}
