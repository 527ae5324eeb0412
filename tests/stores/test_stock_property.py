"""Stock is never oversold and always accounted for, whatever the sequence of orders (direct backend)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.stores.errors import InsufficientStockError
from pipeline.stores.models import OrderLine
from pipeline.stores.sql.postgres import PostgresBackend
from pipeline.stores.sql.repository import AuroraRepository

_PRODUCTS = ("a", "b", "c")
_orders = st.lists(
    st.dictionaries(st.sampled_from(_PRODUCTS), st.integers(min_value=1, max_value=4), min_size=1, max_size=3),
    max_size=12,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stock=st.integers(min_value=0, max_value=8), orders=_orders)
def test_each_order_is_placed_exactly_when_every_line_has_the_stock(
    migrated_database: str, stock: int, orders: list[dict[str, int]]
) -> None:
    # GIVEN three products with the same stock (a fresh schema for every example)
    backend = PostgresBackend(migrated_database)
    try:
        backend.execute_statement(
            "TRUNCATE outbox, order_status_changes, order_items, orders, user_profiles, users, products"
        )
        repo = AuroraRepository(backend)
        user = repo.create_user("p@example.com", "P").user_id
        for product in _PRODUCTS:
            repo.create_product(product, "c", Decimal("1.50"), stock, product_id=product)
        model = dict.fromkeys(_PRODUCTS, stock)
        # WHEN the orders are placed one after the other
        for order in orders:
            fits = all(model[p] >= q for p, q in order.items())
            lines = [OrderLine(p, q, Decimal("1.50")) for p, q in order.items()]
            try:
                repo.create_order_with_items(user, lines)
                placed = True
            except InsufficientStockError as exc:
                placed = False
                assert model[exc.product_id] < order[exc.product_id]  # it names a product really short
            # THEN an order goes through exactly when every line fits, and then takes exactly its units
            assert placed == fits
            if placed:
                for p, q in order.items():
                    model[p] -= q
        assert {p: repo.get_product(p).stock for p in _PRODUCTS} == model
    finally:
        backend.close()
