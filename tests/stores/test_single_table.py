"""The single table on the emulator: every operation, its transactions and conditions, under concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from pipeline.stores import keys
from pipeline.stores.attributes import from_item, to_item
from pipeline.stores.errors import (
    DuplicateEmailError,
    DuplicateReviewError,
    InsufficientStockError,
    InvalidEntityError,
    NotFoundError,
    OrderStatusConflictError,
    OrderTooLargeError,
    PriceChangedError,
    StoreError,
)
from pipeline.stores.models import OrderLine, UserProfile
from pipeline.stores.single_table import MAX_ORDER_LINES, SingleTableRepository
from tests.stores.clocks import SteppingClock

pytestmark = pytest.mark.emulator


@pytest.fixture
def repo(dynamodb: Any, store_table: str) -> SingleTableRepository:
    return SingleTableRepository(dynamodb, store_table, clock=SteppingClock())


def _all_items(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        response = dynamodb.scan(**request)
        items += [from_item(i) for i in response["Items"]]
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _of_type(dynamodb: Any, table: str, entity: str) -> list[dict[str, Any]]:
    return [i for i in _all_items(dynamodb, table) if i.get("entity_type") == entity]


# ---------------------------------------------------------------------------------------- users


def test_a_user_is_created_with_profile_email_claim_and_segment(
    repo: SingleTableRepository, dynamodb: Any, store_table: str
) -> None:
    # GIVEN a new user with a profile
    user = repo.create_user(
        "Ada@Example.com", "Ada", user_segment="premium", profile=UserProfile("ignored", first_name="Ada")
    )
    # WHEN it is read back
    found = repo.get_user_with_profile(user.user_id)
    # THEN user and profile are there, the email normalised
    assert found.user == user
    assert found.user.email == "ada@example.com"
    assert found.profile is not None and found.profile.first_name == "Ada"
    # AND the consumer's key for the user's segment reads the segment
    item = dynamodb.get_item(TableName=store_table, Key=to_item(keys.user_segment_key(user.user_id)))["Item"]
    assert from_item(item)["user_segment"] == "premium"
    # AND the email is claimed by the user
    claim = dynamodb.get_item(TableName=store_table, Key=to_item(keys.email_key("ada@example.com")))["Item"]
    assert from_item(claim)["user_id"] == user.user_id


def test_a_duplicate_email_is_refused_and_writes_nothing(
    repo: SingleTableRepository, dynamodb: Any, store_table: str
) -> None:
    # GIVEN a user
    first = repo.create_user("bob@example.com", "Bob")
    before = _all_items(dynamodb, store_table)
    # WHEN another signs up with the same email in another case
    with pytest.raises(DuplicateEmailError) as caught:
        repo.create_user("BOB@example.com", "Impostor", user_id="impostor")
    # THEN the error names the email, and the table is unchanged (no user, no profile for the impostor)
    assert caught.value.email == "bob@example.com"
    assert _all_items(dynamodb, store_table) == before
    with pytest.raises(NotFoundError):
        repo.get_user_with_profile("impostor")
    assert repo.get_user_with_profile(first.user_id).user == first


def test_concurrent_sign_ups_with_one_email_make_exactly_one_user(
    repo: SingleTableRepository, dynamodb: Any, store_table: str
) -> None:
    # GIVEN 12 sign-ups with one email, at once
    def sign_up(i: int) -> str:
        try:
            return repo.create_user("race@example.com", f"racer {i}", user_id=f"racer-{i}").user_id
        except DuplicateEmailError:
            return "duplicate"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(sign_up, range(12)))
    # THEN exactly one succeeded, and the table holds exactly one user, one profile and one claim
    winners = [o for o in outcomes if o != "duplicate"]
    assert len(winners) == 1
    assert [u["user_id"] for u in _of_type(dynamodb, store_table, "USER")] == winners
    assert len(_of_type(dynamodb, store_table, "USER_PROFILE")) == 1
    assert [c["user_id"] for c in _of_type(dynamodb, store_table, "EMAIL")] == winners


@pytest.mark.parametrize(
    "email", [pytest.param("no-at-sign", id="no-at"), pytest.param("a#b@example.com", id="separator")]
)
def test_a_malformed_email_is_refused(repo: SingleTableRepository, email: str) -> None:
    with pytest.raises(InvalidEntityError):
        repo.create_user(email, "x")


# ---------------------------------------------------------------------------------------- products


def test_products_of_a_category_come_by_name_a_page_at_a_time(repo: SingleTableRepository) -> None:
    # GIVEN five books and a toy
    for name in ("e", "c", "a", "d", "b"):
        repo.create_product(name, "books", Decimal("9.99"), 3, product_id=f"book-{name}")
    repo.create_product("kite", "toys", Decimal("20"), 1)
    # WHEN the books are read two at a time
    names: list[str] = []
    page = repo.get_products_by_category("books", limit=2)
    pages = 1
    while True:
        names += [p.name for p in page.items]
        if page.cursor is None:
            break
        page = repo.get_products_by_category("books", limit=2, cursor=page.cursor)
        pages += 1
    # THEN every book comes once, by name, and paging took at least three pages
    assert names == ["a", "b", "c", "d", "e"]
    assert pages >= 3
    assert repo.get_product("book-a").price == Decimal("9.99")


@pytest.mark.parametrize(
    "price", [pytest.param(9.99, id="float"), pytest.param(Decimal("-1"), id="negative"), pytest.param("x", id="text")]
)
def test_money_is_a_non_negative_decimal(repo: SingleTableRepository, price: Any) -> None:
    with pytest.raises(InvalidEntityError):
        repo.create_product("p", "c", price, 1)


# ---------------------------------------------------------------------------------------- orders


def _shop(repo: SingleTableRepository, stock: int = 10) -> tuple[str, str, str]:
    user = repo.create_user("shopper@example.com", "Shopper").user_id
    repo.create_product("Pen", "office", Decimal("1.10"), stock, product_id="pen")
    repo.create_product("Ink", "office", Decimal("2.35"), stock, product_id="ink")
    return user, "pen", "ink"


def test_an_order_writes_its_lines_and_moves_stock_in_one_transaction(repo: SingleTableRepository) -> None:
    # GIVEN a shopper and two products with 10 units each
    user, pen, ink = _shop(repo)
    # WHEN they order 3 pens and 2 ink
    order = repo.create_order(user, [OrderLine(pen, 3, Decimal("1.10")), OrderLine(ink, 2, Decimal("2.35"))])
    # THEN the total is exact, the order reads back with its lines, and the stock moved
    assert order.total_amount == Decimal("8.00")
    stored = repo.get_order_with_items(order.order_id)
    assert stored == order
    assert (repo.get_product(pen).stock, repo.get_product(ink).stock) == (7, 8)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        pytest.param(OrderLine("ink", 11, Decimal("2.35")), InsufficientStockError, id="short-of-stock"),
        pytest.param(OrderLine("ink", 1, Decimal("2.30")), PriceChangedError, id="stale-price"),
        pytest.param(OrderLine("nope", 1, Decimal("1")), NotFoundError, id="unknown-product"),
    ],
)
def test_a_refused_line_refuses_the_whole_order_and_writes_nothing(
    repo: SingleTableRepository, dynamodb: Any, store_table: str, line: OrderLine, error: type[StoreError]
) -> None:
    # GIVEN a shopper and stock
    user, pen, _ = _shop(repo)
    before = _all_items(dynamodb, store_table)
    # WHEN an order has one good line and one bad one
    with pytest.raises(error) as caught:
        repo.create_order(user, [OrderLine(pen, 1, Decimal("1.10")), line])
    # THEN nothing was written, the pen's stock included
    assert _all_items(dynamodb, store_table) == before
    if isinstance(caught.value, InsufficientStockError):
        assert (caught.value.product_id, caught.value.requested, caught.value.available) == ("ink", 11, 10)


def test_an_order_for_an_unknown_user_is_refused(repo: SingleTableRepository) -> None:
    _shop(repo)
    with pytest.raises(NotFoundError) as caught:
        repo.create_order("ghost", [OrderLine("pen", 1, Decimal("1.10"))])
    assert caught.value.kind == "user"
    assert repo.get_product("pen").stock == 10


def test_the_largest_order_fits_one_transaction_and_a_larger_one_is_refused_before_any_write(
    repo: SingleTableRepository, dynamodb: Any, store_table: str
) -> None:
    # GIVEN a shopper and 50 products
    user = repo.create_user("bulk@example.com", "Bulk").user_id
    for i in range(MAX_ORDER_LINES + 1):
        repo.create_product(f"p{i}", "bulk", Decimal("1"), 5, product_id=f"p{i}")
    lines = [OrderLine(f"p{i}", 1, Decimal("1")) for i in range(MAX_ORDER_LINES + 1)]
    # WHEN an order has one line too many, THEN it is refused, nothing written
    before = _all_items(dynamodb, store_table)
    with pytest.raises(OrderTooLargeError):
        repo.create_order(user, lines)
    assert _all_items(dynamodb, store_table) == before
    # AND an order of exactly MAX_ORDER_LINES lines (a 100-action transaction) goes through
    order = repo.create_order(user, lines[:MAX_ORDER_LINES])
    assert len(repo.get_order_with_items(order.order_id).lines) == MAX_ORDER_LINES


def test_concurrent_orders_for_the_last_units_sell_exactly_the_stock(
    repo: SingleTableRepository, dynamodb: Any, store_table: str
) -> None:
    # GIVEN 5 units left and 14 shoppers wanting one each, at once
    user, pen, _ = _shop(repo, stock=5)

    def buy(i: int) -> str:
        try:
            return repo.create_order(user, [OrderLine(pen, 1, Decimal("1.10"))], order_id=f"o{i}").order_id
        except InsufficientStockError:
            return "sold out"

    with ThreadPoolExecutor(max_workers=7) as pool:
        outcomes = list(pool.map(buy, range(14)))
    # THEN exactly 5 orders went through, the stock is 0, and only their lines exist
    placed = sorted(o for o in outcomes if o != "sold out")
    assert len(placed) == 5
    assert repo.get_product(pen).stock == 0
    assert sorted(i["order_id"] for i in _of_type(dynamodb, store_table, "ORDER")) == placed
    assert len(_of_type(dynamodb, store_table, "ORDER_LINE")) == 5


def test_status_changes_move_the_order_through_gsi2_in_order(repo: SingleTableRepository) -> None:
    # GIVEN three orders
    user, pen, _ = _shop(repo)
    orders = [repo.create_order(user, [OrderLine(pen, 1, Decimal("1.10"))]).order_id for _ in range(3)]
    assert [o.order_id for o in repo.get_orders_by_status("created").items] == orders
    # WHEN the second is paid, then the first, and the second is shipped
    repo.update_order_status(orders[1], "paid", expected_status="created")
    repo.update_order_status(orders[0], "paid", expected_status="created")
    shipped = repo.update_order_status(orders[1], "shipped", expected_status="paid")
    # THEN each status lists its orders in the order they entered it, and nowhere else
    assert [o.order_id for o in repo.get_orders_by_status("created").items] == [orders[2]]
    assert [o.order_id for o in repo.get_orders_by_status("paid").items] == [orders[0]]
    assert [o.order_id for o in repo.get_orders_by_status("shipped").items] == [orders[1]]
    # AND the order's version counts its changes, its lines stay
    assert (shipped.status, shipped.version, len(shipped.lines)) == ("shipped", 3, 1)
    assert repo.get_order_with_items(orders[1]) == shipped


def test_a_status_change_from_the_wrong_status_is_refused(repo: SingleTableRepository) -> None:
    user, pen, _ = _shop(repo)
    order = repo.create_order(user, [OrderLine(pen, 1, Decimal("1.10"))])
    with pytest.raises(OrderStatusConflictError) as caught:
        repo.update_order_status(order.order_id, "shipped", expected_status="paid")
    assert caught.value.actual == "created"
    with pytest.raises(InvalidEntityError):
        repo.update_order_status(order.order_id, "shipped", expected_status="created")  # not an allowed move
    with pytest.raises(NotFoundError):
        repo.update_order_status("missing", "paid", expected_status="created")
    assert repo.get_order_with_items(order.order_id).status == "created"


def test_concurrent_status_changes_from_one_status_let_exactly_one_win(repo: SingleTableRepository) -> None:
    user, pen, _ = _shop(repo)
    order = repo.create_order(user, [OrderLine(pen, 1, Decimal("1.10"))]).order_id
    targets = ["paid", "cancelled", "completed"] * 3

    def move(target: str) -> str:
        try:
            return repo.update_order_status(order, target, expected_status="created").status
        except OrderStatusConflictError:
            return "lost"

    with ThreadPoolExecutor(max_workers=5) as pool:
        outcomes = list(pool.map(move, targets))
    winners = [o for o in outcomes if o != "lost"]
    assert len(winners) == 1
    final = repo.get_order_with_items(order)
    assert (final.status, final.version) == (winners[0], 2)


def test_a_users_orders_come_newest_first_a_page_at_a_time(repo: SingleTableRepository) -> None:
    user, pen, _ = _shop(repo)
    placed = [repo.create_order(user, [OrderLine(pen, 1, Decimal("1.10"))]).order_id for _ in range(5)]
    first = repo.get_user_orders(user, limit=3)
    assert first.cursor is not None
    second = repo.get_user_orders(user, limit=3, cursor=first.cursor)
    assert [o.order_id for o in [*first.items, *second.items]] == placed[::-1]


# ---------------------------------------------------------------------------------------- reviews


def test_reviews_are_one_per_user_newest_first_and_count_on_the_product(
    repo: SingleTableRepository, dynamodb: Any, store_table: str
) -> None:
    # GIVEN a product and three users reviewing it in turn
    repo.create_product("Lamp", "home", Decimal("30"), 1, product_id="lamp")
    users = [repo.create_user(f"r{i}@example.com", f"r{i}").user_id for i in range(3)]
    for user, rating in zip(users, (5, 3, 4), strict=True):
        repo.add_review("lamp", user, rating, f"rated {rating}")
    # WHEN a user reviews it again
    with pytest.raises(DuplicateReviewError):
        repo.add_review("lamp", users[0], 1)
    # THEN the reviews read newest first, two per page
    first = repo.get_product_reviews("lamp", limit=2)
    assert first.cursor is not None
    rest = repo.get_product_reviews("lamp", limit=2, cursor=first.cursor)
    assert [r.user_id for r in [*first.items, *rest.items]] == users[::-1]
    # AND the product's totals count each review once
    product = from_item(dynamodb.get_item(TableName=store_table, Key=to_item(keys.product_key("lamp")))["Item"])
    assert (product["review_count"], product["rating_total"]) == (3, 12)
    # AND reviews of unknown products or by unknown users are refused
    with pytest.raises(NotFoundError):
        repo.add_review("nope", users[0], 3)
    with pytest.raises(NotFoundError):
        repo.add_review("lamp", "ghost", 3)
