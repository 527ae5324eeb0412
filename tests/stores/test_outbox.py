"""The SQL store's outbox drained into the events stream (both backends), with crashes between the publish
and the mark; and the daily analytics against what the consumer makes of the same events."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from pipeline.exceptions import DeliveryError
from pipeline.retry import RetryPolicy
from pipeline.settings import Settings, aws_client
from pipeline.stores.models import OrderLine
from pipeline.stores.order_events import order_event_id
from pipeline.stores.sql.backend import Params, SqlBackend
from pipeline.stores.sql.outbox import OutboxRelay
from pipeline.stores.sql.repository import AuroraRepository
from producers import Producer
from tests.stores.cdc_helpers import consume, decoded, stream_records
from tests.stores.clocks import SteppingClock
from tools.faults import FaultInjector

pytestmark = pytest.mark.emulator


class _CrashOnMark:
    """The backend, except that the relay's first ``crashes`` marks die (the relay crashed after publishing)."""

    def __init__(self, backend: SqlBackend, crashes: int) -> None:
        self._backend = backend
        self.crashes = crashes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def batch_execute_statement(self, sql: str, param_sets: Sequence[Params]) -> None:
        if self.crashes and sql.startswith("UPDATE outbox"):
            self.crashes -= 1
            raise RuntimeError("relay crashed after publishing, before marking")
        self._backend.batch_execute_statement(sql, param_sets)


@pytest.fixture
def kinesis(emulator: Settings) -> Any:
    return aws_client("kinesis", emulator.with_(max_attempts=1))


@pytest.fixture
def producer(kinesis: Any, kinesis_stream: str) -> Iterator[Producer]:
    with Producer(kinesis_stream, kinesis, linger_seconds=0, retry=RetryPolicy(attempts=1)) as made:
        yield made


def _shop(repo: AuroraRepository) -> list[tuple[str, str, int]]:
    """Orders over two UTC days, some completed or cancelled; every committed change (order, status, version)."""
    clock = repo._clock
    assert isinstance(clock, SteppingClock)
    users = [repo.create_user(f"u{i}@example.com", f"u{i}").user_id for i in range(3)]
    repo.create_product("Pen", "office", Decimal("1.10"), 100, product_id="pen")
    repo.create_product("Ink", "office", Decimal("2.35"), 100, product_id="ink")
    changes = []
    clock.set(datetime(2026, 11, 24, 23, 58, tzinfo=UTC))  # orders straddle midnight
    for i in range(7):
        lines = [OrderLine("pen", i + 1, Decimal("1.10"))] + ([OrderLine("ink", 2, Decimal("2.35"))] if i % 2 else [])
        order = repo.create_order_with_items(users[i % 3], lines)
        changes.append((order.order_id, "created", 1))
        if i % 3 == 0:
            repo.update_order_status(order.order_id, "completed", expected_status="created")
            changes.append((order.order_id, "completed", 2))
        elif i % 3 == 1:
            repo.update_order_status(order.order_id, "cancelled", expected_status="created")
            changes.append((order.order_id, "cancelled", 2))
    return changes


def test_the_outbox_drains_every_committed_change_once(
    sql_backend: SqlBackend, producer: Producer, kinesis: Any, kinesis_stream: str
) -> None:
    # GIVEN committed orders and status changes
    repo = AuroraRepository(sql_backend, clock=SteppingClock(step=30))
    changes = _shop(repo)
    # WHEN the relay drains the outbox in small batches
    result = OutboxRelay(sql_backend, producer, batch_size=4).drain()
    # THEN each change's event is on the stream once, and nothing is left to publish
    events = decoded(stream_records(kinesis, kinesis_stream))
    assert sorted(e.event_id for e in events) == sorted(order_event_id(*c) for c in changes)
    assert result.published == len(changes)
    assert OutboxRelay(sql_backend, producer).drain().published == 0


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("crash-after-publish", id="crash-after-publish"),
        pytest.param("publish-refused", id="publish-refused"),
    ],
)
def test_a_crash_between_publish_and_mark_loses_nothing_and_replays_identical_events(
    sql_backend: SqlBackend, producer: Producer, kinesis: Any, kinesis_stream: str, fault: str
) -> None:
    # GIVEN committed changes, and a relay that crashes after publishing (or whose publishes are refused)
    repo = AuroraRepository(sql_backend, clock=SteppingClock(step=30))
    expected = sorted(order_event_id(*c) for c in _shop(repo))
    if fault == "crash-after-publish":
        with pytest.raises(RuntimeError):
            OutboxRelay(_CrashOnMark(sql_backend, crashes=1), producer, batch_size=5).drain()
    else:
        with FaultInjector(seed=3) as faults, pytest.raises(DeliveryError):
            faults.fail_put_records(kinesis, rate=0.5)
            OutboxRelay(sql_backend, producer, batch_size=5).drain()
    # WHEN a relay drains again
    OutboxRelay(sql_backend, producer, batch_size=5).drain()
    # THEN every event is on the stream; copies are identical; after a crash after publishing there are copies
    events = decoded(stream_records(kinesis, kinesis_stream))
    assert sorted({e.event_id for e in events}) == expected
    first: dict[str, Any] = {}
    for event in events:
        assert first.setdefault(event.event_id, event) == event
    if fault == "crash-after-publish":
        assert len(events) == len(expected) + 5  # the crashed batch, published twice
    else:
        assert len(events) == len(expected)  # refused entries were never written, and are sent once later
    unpublished = sql_backend.execute_statement("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
    assert unpublished.rows == [{"n": 0}]


def test_the_daily_analytics_equal_the_consumers_daily_order_metrics_for_the_same_orders(
    sql_backend: SqlBackend, producer: Producer, kinesis: Any, kinesis_stream: str
) -> None:
    # GIVEN orders over two days, drained to the stream and counted by the real consumer
    repo = AuroraRepository(sql_backend, clock=SteppingClock(step=30))
    _shop(repo)
    OutboxRelay(sql_backend, producer).drain()
    tables = consume(stream_records(kinesis, kinesis_stream), batch_size=3)
    daily = {
        key[1][1]: item for key, item in tables["order_metrics"].items() if dict(key)["metric_type"] == "daily_orders"
    }
    # WHEN the analytics are asked for those days
    analytics = repo.get_analytics_data(date(2026, 11, 24), date(2026, 11, 25))
    # THEN they give the same numbers, day by day
    assert [a.day.isoformat() for a in analytics] == sorted(daily) == ["2026-11-24", "2026-11-25"]
    for day in analytics:
        item = daily[day.day.isoformat()]
        assert day.order_count == item.get("order_count", 0)
        assert day.total_revenue == item.get("total_revenue", 0)
        assert day.items_sold == item.get("items_sold", 0)
        assert day.completed_orders == item.get("completed_orders", 0)
        assert day.completed_revenue == item.get("completed_revenue", 0)
        assert day.cancelled_orders == item.get("cancelled_orders", 0)
    assert sum(a.order_count for a in analytics) == 7
