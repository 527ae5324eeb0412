"""The demo's entity stores: a throwaway PostgreSQL for the SQL store, and the check that every order
the stores committed reached the metrics, once.

:class:`DemoSqlStore` starts :class:`~tools.local.postgres.LocalPostgres` (found or installed as the
tests do), migrates it and hands out a :class:`~pipeline.stores.sql.postgres.PostgresBackend`; when
PostgreSQL cannot run here the demo goes on with the single table alone and says why. :func:`check_orders`
reads back what both stores committed (:mod:`tools.committed`) and compares it with the order metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pipeline.events import Event, OrderData
from pipeline.exceptions import EmulatorError
from pipeline.stores.sql.migrate import migrate
from pipeline.stores.sql.postgres import PostgresBackend
from pipeline.stores.sql.repository import EVENT_SOURCE as SQL_SOURCE
from tools.committed import committed_events, order_totals, single_table_orders, sql_order_changes
from tools.local.postgres import LocalPostgres
from tools.verify import Tables

__all__ = ["DemoSqlStore", "OrderCheck", "check_orders", "order_events_of"]


class DemoSqlStore:
    """The SQL store of one demo run: ``backend`` is ``None`` when it could not start (``note`` says why).
    :meth:`close` stops the server and removes its directory; idempotent."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.server: LocalPostgres | None = None
        self.backend: PostgresBackend | None = None
        self.note = "off (--no-sql)"
        if not enabled:
            return
        server = LocalPostgres(database="demo_stores")
        try:
            server.start()
            backend = PostgresBackend(server.conninfo)
            migrate(backend)
        except EmulatorError as exc:
            server.stop()
            self.note = f"not run: {exc}"
            return
        self.server, self.backend = server, backend
        self.note = f"PostgreSQL on 127.0.0.1:{server.port} (direct backend, migrated)"

    def close(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            backend.close()
        server, self.server = self.server, None
        if server is not None:
            server.stop()


@dataclass
class OrderCheck:
    """What the stores committed and what the metrics counted of it."""

    events: list[Event] = field(default_factory=list)
    """Every committed order change as the event CDC must publish (the oracle's orders)."""
    orders: int = 0
    revenue: Decimal = Decimal(0)
    counted_daily: int = 0
    counted_hourly: int = 0
    revenue_daily: Decimal = Decimal(0)
    revenue_hourly: Decimal = Decimal(0)
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The figures (money as strings), without the events."""
        return {
            "orders": self.orders,
            "revenue": str(self.revenue),
            "counted_daily": self.counted_daily,
            "counted_hourly": self.counted_hourly,
            "revenue_daily": str(self.revenue_daily),
            "revenue_hourly": str(self.revenue_hourly),
            "order_events": len(self.events),
            "problems": self.problems,
        }


def check_orders(
    dynamodb: Any, store_table: str, backend: PostgresBackend | None, tables: Tables, published: int
) -> OrderCheck:
    """Read back both stores' orders; check that the metrics' daily and hourly order counts and revenue
    equal theirs (each committed order counted exactly once) and that CDC ``published`` at least one
    event per committed change."""
    sql = sql_order_changes(backend, SQL_SOURCE) if backend is not None else []
    check = OrderCheck(events=committed_events(single_table_orders(dynamodb, store_table), sql))
    created = [e.data for e in check.events if isinstance(e.data, OrderData) and e.data.status == "created"]
    check.orders = len(created)
    check.revenue = sum((order.total_amount for order in created), Decimal(0))
    totals = order_totals(tables.get("order_metrics", {}))
    check.counted_daily, check.counted_hourly = totals.daily_orders, totals.hourly_orders
    check.revenue_daily, check.revenue_hourly = totals.daily_revenue, totals.hourly_revenue
    for scope, count, revenue in (
        ("daily_orders", totals.daily_orders, totals.daily_revenue),
        ("hourly_orders", totals.hourly_orders, totals.hourly_revenue),
    ):
        if (count, revenue) != (check.orders, check.revenue):
            check.problems.append(
                f"{scope}: {count} orders, revenue {revenue} counted; the stores committed {check.orders} "
                f"orders, revenue {check.revenue}"
            )
    if published < len(check.events):
        check.problems.append(f"CDC published {published} events for {len(check.events)} committed order changes")
    return check


def order_events_of(events: Sequence[Event]) -> tuple[list[Event], list[Event]]:
    """``events`` split into (not orders, orders), each in input order."""
    orders: list[Event] = [e for e in events if isinstance(e.data, OrderData)]
    others: list[Event] = [e for e in events if not isinstance(e.data, OrderData)]
    return others, orders
