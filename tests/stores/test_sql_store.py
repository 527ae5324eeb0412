"""The SQL store on a real PostgreSQL server, through both backends: the direct one and the Data API one
(its real botocore code path, answered by the stand-in). Every test runs on both."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from pipeline.stores.errors import (
    DuplicateEmailError,
    InsufficientStockError,
    NotFoundError,
    OrderStatusConflictError,
    PriceChangedError,
    SqlError,
    StoreError,
)
from pipeline.stores.models import OrderLine, UserProfile
from pipeline.stores.sql.backend import Json, SqlBackend, SqlTransaction
from pipeline.stores.sql.migrate import applied_migrations, load_migrations, migrate
from pipeline.stores.sql.repository import AuroraRepository
from tests.stores.backends import sql_backend_for
from tests.stores.clocks import SteppingClock


@pytest.fixture
def repo(sql_backend: SqlBackend) -> AuroraRepository:
    return AuroraRepository(sql_backend, clock=SteppingClock())


def _count(backend: SqlBackend, table: str) -> int:
    row = backend.execute_statement(f"SELECT count(*) AS n FROM {table}").one()  # noqa: S608 - test tables
    assert row is not None
    return int(row["n"])


# ---------------------------------------------------------------------------------------- the interface


@pytest.mark.parametrize("kind", [pytest.param("postgres", id="postgres"), pytest.param("data-api", id="data-api")])
def test_migrations_apply_once_even_when_runners_race(postgres_database: str, kind: str) -> None:
    # GIVEN an empty database
    backend, close = sql_backend_for(kind, postgres_database)
    assert applied_migrations(backend) == []
    # WHEN three runners race to migrate it
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: migrate(backend), range(3)))
    # THEN exactly one applied each migration, each version is recorded once, and the tables exist
    versions = [m.version for m in load_migrations()]
    assert sorted(results, key=len) == [[], [], versions]
    assert applied_migrations(backend) == versions
    assert backend.execute_statement("SELECT count(*) AS n FROM outbox").rows == [{"n": 0}]
    close()


def test_typed_parameters_round_trip_exactly(sql_backend: SqlBackend) -> None:
    # GIVEN a table with a column of each type the interface promises
    sql_backend.execute_statement(
        "CREATE TABLE typed (n numeric, i bigint, f double precision, b boolean, s text, t timestamptz, "
        "d date, u uuid, j jsonb, x bytea, z text)"
    )
    values: dict[str, Any] = {
        "n": Decimal("12345678901234567890.0100"),
        "i": 2**40,
        "f": 0.5,
        "b": True,
        "s": "it's :not a parameter; 100%",
        "t": datetime(2026, 11, 24, 9, 30, 1, 250_000, tzinfo=UTC),
        "d": date(2026, 11, 24),
        "u": UUID("12345678-1234-5678-1234-567812345678"),
        "j": Json({"price": Decimal("1.10"), "items": [1, "two"]}),
        "x": b"\x00\xff",
        "z": None,
    }
    # WHEN they are written and read back
    sql_backend.execute_statement("INSERT INTO typed VALUES (:n, :i, :f, :b, :s, :t, :d, :u, :j, :x, :z)", values)
    row = sql_backend.execute_statement("SELECT * FROM typed").one()
    # THEN every value comes back as the same Python value (money exact, times aware UTC, JSON parsed)
    assert row == {**values, "j": {"price": "1.10", "items": [1, "two"]}}
    assert row is not None and row["t"].tzinfo is not None


def test_a_transaction_commits_or_rolls_back_whole_on_any_error(sql_backend: SqlBackend) -> None:
    sql_backend.execute_statement("CREATE TABLE t (k text PRIMARY KEY)")

    def fails_after_a_write(tx: SqlTransaction) -> None:
        assert tx.execute_statement("INSERT INTO t VALUES (:k)", {"k": "a"}).rows_updated == 1
        raise RuntimeError("the caller's own failure")

    with pytest.raises(RuntimeError):
        sql_backend.execute_transaction(fails_after_a_write)
    assert _count(sql_backend, "t") == 0
    # AND a database error rolls back what came before it, typed, with its SQLSTATE and constraint
    with pytest.raises(SqlError) as caught, sql_backend.transaction() as tx:
        tx.batch_execute_statement("INSERT INTO t VALUES (:k)", [{"k": "b"}, {"k": "c"}])
        tx.execute_statement("INSERT INTO t VALUES (:k)", {"k": "b"})
    assert (caught.value.code, caught.value.constraint) == ("23505", "t_pkey")
    assert _count(sql_backend, "t") == 0
    # AND a committed one is all there
    sql_backend.execute_transaction(lambda tx: tx.batch_execute_statement("INSERT INTO t VALUES (:k)", [{"k": "d"}]))
    assert _count(sql_backend, "t") == 1


def test_a_syntax_error_is_a_typed_sql_error(sql_backend: SqlBackend) -> None:
    with pytest.raises(SqlError) as caught:
        sql_backend.execute_statement("SELEC 1")
    assert caught.value.code == "42601"


# ---------------------------------------------------------------------------------------- users


def test_a_user_is_created_with_profile_and_a_duplicate_email_is_refused(repo: AuroraRepository) -> None:
    user = repo.create_user("Ada@Example.com", "Ada", user_segment="premium", profile=UserProfile("x", "Ada", "L"))
    found = repo.get_user_with_profile(user.user_id)
    assert found.user == user
    assert found.profile == UserProfile(user.user_id, "Ada", "L", None)
    with pytest.raises(DuplicateEmailError):
        repo.create_user("ada@example.COM", "Impostor", user_id="impostor")
    with pytest.raises(NotFoundError):
        repo.get_user_with_profile("impostor")
    assert _count(repo.backend, "user_profiles") == 1


def test_concurrent_sign_ups_with_one_email_make_exactly_one_user(repo: AuroraRepository) -> None:
    def sign_up(i: int) -> str:
        try:
            return repo.create_user("race@example.com", f"racer {i}", user_id=f"racer-{i}").user_id
        except DuplicateEmailError:
            return "duplicate"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(sign_up, range(12)))
    winners = [o for o in outcomes if o != "duplicate"]
    assert len(winners) == 1
    assert (_count(repo.backend, "users"), _count(repo.backend, "user_profiles")) == (1, 1)


# ---------------------------------------------------------------------------------------- orders


def _shop(repo: AuroraRepository, stock: int = 10) -> str:
    user = repo.create_user("shopper@example.com", "Shopper").user_id
    repo.create_product("Pen", "office", Decimal("1.10"), stock, product_id="pen")
    repo.create_product("Ink", "office", Decimal("2.35"), stock, product_id="ink")
    return user


def test_an_order_writes_items_stock_history_and_its_event_in_one_transaction(repo: AuroraRepository) -> None:
    user = _shop(repo)
    order = repo.create_order_with_items(
        user, [OrderLine("pen", 3, Decimal("1.10")), OrderLine("ink", 2, Decimal("2.35"))]
    )
    assert order.total_amount == Decimal("8.00")
    assert repo.get_order_with_items(order.order_id) == order
    assert (repo.get_product("pen").stock, repo.get_product("ink").stock) == (7, 8)
    outbox = repo.execute_statement("SELECT payload FROM outbox").rows
    assert [row["payload"]["data"]["order_id"] for row in outbox] == [order.order_id]
    assert outbox[0]["payload"]["data"]["total_amount"] == "8.00"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        pytest.param(OrderLine("ink", 11, Decimal("2.35")), InsufficientStockError, id="short-of-stock"),
        pytest.param(OrderLine("ink", 1, Decimal("2.30")), PriceChangedError, id="stale-price"),
        pytest.param(OrderLine("nope", 1, Decimal("1")), NotFoundError, id="unknown-product"),
    ],
)
def test_a_stock_decrement_that_affects_no_row_rolls_the_order_back(
    repo: AuroraRepository, line: OrderLine, error: type[StoreError]
) -> None:
    # GIVEN stock, and an order whose good line ("pen") is decremented before the bad one ("ink", "nope")
    user = _shop(repo)
    # WHEN it is placed
    with pytest.raises(error) as caught:
        repo.create_order_with_items(user, [OrderLine("pen", 1, Decimal("1.10")), line], order_id="o1")
    # THEN nothing of it remains: no order, no items, no event, and the pen's decrement undone
    for table in ("orders", "order_items", "order_status_changes", "outbox"):
        assert _count(repo.backend, table) == 0, table
    assert repo.get_product("pen").stock == 10
    if isinstance(caught.value, InsufficientStockError):
        assert (caught.value.product_id, caught.value.available) == ("ink", 10)


def test_an_order_for_an_unknown_user_is_refused(repo: AuroraRepository) -> None:
    _shop(repo)
    with pytest.raises(NotFoundError) as caught:
        repo.create_order_with_items("ghost", [OrderLine("pen", 1, Decimal("1.10"))])
    assert caught.value.kind == "user"
    assert repo.get_product("pen").stock == 10


def test_concurrent_orders_for_the_last_units_sell_exactly_the_stock(repo: AuroraRepository) -> None:
    user = _shop(repo, stock=5)

    def buy(i: int) -> str:
        try:
            # both products, in opposite orders on alternate calls: the store's lock order prevents deadlocks
            lines = [OrderLine("pen", 1, Decimal("1.10")), OrderLine("ink", 1, Decimal("2.35"))]
            return repo.create_order_with_items(user, lines[:: 1 if i % 2 else -1], order_id=f"o{i}").order_id
        except InsufficientStockError:
            return "sold out"

    with ThreadPoolExecutor(max_workers=7) as pool:
        outcomes = list(pool.map(buy, range(14)))
    placed = [o for o in outcomes if o != "sold out"]
    assert len(placed) == 5
    assert (repo.get_product("pen").stock, repo.get_product("ink").stock) == (0, 0)
    assert (_count(repo.backend, "orders"), _count(repo.backend, "order_items"), _count(repo.backend, "outbox")) == (
        5,
        10,
        5,
    )


def test_a_status_change_is_conditional_on_the_expected_status(repo: AuroraRepository) -> None:
    user = _shop(repo)
    order = repo.create_order_with_items(user, [OrderLine("pen", 1, Decimal("1.10"))])
    paid = repo.update_order_status(order.order_id, "paid", expected_status="created")
    assert (paid.status, paid.version, paid.lines) == ("paid", 2, order.lines)
    with pytest.raises(OrderStatusConflictError) as caught:
        repo.update_order_status(order.order_id, "cancelled", expected_status="created")
    assert caught.value.actual == "paid"
    with pytest.raises(NotFoundError):
        repo.update_order_status("missing", "paid", expected_status="created")
    assert repo.get_order_with_items(order.order_id) == paid
    assert _count(repo.backend, "outbox") == 2


def test_the_daily_analytics_count_each_status_on_the_day_the_order_entered_it(repo: AuroraRepository) -> None:
    # GIVEN orders placed on two days, some completed or cancelled later
    clock = repo._clock
    assert isinstance(clock, SteppingClock)
    user = _shop(repo, stock=100)
    other = repo.create_user("other@example.com", "Other").user_id
    clock.set(datetime(2026, 11, 24, 23, 59, 0, tzinfo=UTC))
    a = repo.create_order_with_items(user, [OrderLine("pen", 2, Decimal("1.10"))])  # 2.20, day 1
    b = repo.create_order_with_items(
        other, [OrderLine("ink", 1, Decimal("2.35")), OrderLine("pen", 1, Decimal("1.10"))]
    )
    clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    c = repo.create_order_with_items(user, [OrderLine("ink", 4, Decimal("2.35"))])  # 9.40, day 2
    repo.update_order_status(a.order_id, "completed", expected_status="created")  # day 2
    repo.update_order_status(b.order_id, "paid", expected_status="created")
    repo.update_order_status(b.order_id, "cancelled", expected_status="paid")  # day 2
    repo.update_order_status(c.order_id, "completed", expected_status="created")  # day 2
    # WHEN the two days are asked for
    day1, day2 = repo.get_analytics_data(date(2026, 11, 24), date(2026, 11, 25))
    # THEN day one has the two orders placed, day two the third and the completions and cancellation
    assert (day1.day, day1.order_count, day1.total_revenue, day1.items_sold, day1.customers) == (
        date(2026, 11, 24),
        2,
        Decimal("5.65"),
        4,
        2,
    )
    assert (day1.completed_orders, day1.cancelled_orders, day1.average_order_value) == (0, 0, Decimal("2.82"))
    assert (day2.order_count, day2.total_revenue, day2.items_sold) == (1, Decimal("9.40"), 4)
    assert (day2.completed_orders, day2.completed_revenue, day2.cancelled_orders) == (2, Decimal("11.60"), 1)
    assert repo.get_analytics_data(date(2026, 11, 26)) == []
