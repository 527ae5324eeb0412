"""The demo's shop: users and products seeded in the entity stores, orders placed through them, and the
change data capture that turns the committed orders into events on the stream.

What the demo does with the order events of its input (generated or read):

- every user of an activity or an order of the input is created in the single table (the consumer
  reads the segments of its activities' users there) and, when PostgreSQL runs, in the SQL store; every
  product an order names is created in both, at the price of its first order line, with ``stock``
  units in each store; all before anything is published (:meth:`DemoShop.seed`);
- an order event of an order not seen yet, with an opening status (``created``, ``pending``,
  ``placed``), places the order: ``create_order`` on the single table or ``create_order_with_items`` on
  the SQL store, chosen by the order id (:func:`store_of`). The stores' clock is the event's time, so
  the metrics bucket as the input would. An order a store refuses (stock, price, duplicate, invalid)
  is *rejected*, nothing is written, and its later events are skipped;
- an order event of a placed order with a status the store can move to (``TRANSITIONS``) moves it
  (``update_order_status``, conditional on the status the demo committed last); others are skipped
  and counted by reason;
- nothing of it goes to the stream from here (no dual write): the order events reach the stream only
  from what the stores committed, through the table's stream -> :class:`~pipeline.stores.cdc.StreamBridge`
  and the outbox -> :class:`~pipeline.stores.sql.outbox.OutboxRelay`, pumped by :meth:`DemoShop.pump`
  while orders are placed and drained by :meth:`DemoShop.drain` at the end.

Each store's orders are placed by a thread of its own, in input order, and that thread pumps its
store's CDC path; the stores hold separate stock, so what each commits and rejects is the same on every
run. Not thread-safe otherwise: one caller at a time.
"""

from __future__ import annotations

import threading
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from pipeline.events import Event, EventType, OrderData
from pipeline.exceptions import DeliveryError
from pipeline.stores.cdc import StreamBridge
from pipeline.stores.errors import (
    DuplicateEmailError,
    DuplicateOrderError,
    DuplicateProductError,
    DuplicateUserError,
    InsufficientStockError,
    InvalidEntityError,
    NotFoundError,
    OrderStatusConflictError,
    OrderTooLargeError,
    PriceChangedError,
)
from pipeline.stores.models import TRANSITIONS, OrderLine
from pipeline.stores.single_table import SingleTableRepository
from pipeline.stores.sql.backend import SqlBackend
from pipeline.stores.sql.outbox import OutboxRelay
from pipeline.stores.sql.repository import AuroraRepository
from producers import Producer
from tools.local.stream_poller import DynamoDBStreamPoller
from tools.shop import CATEGORIES

__all__ = ["SEGMENTS", "SINGLE_TABLE", "SQL", "DemoShop", "ShopSummary", "segment_of", "store_of"]

SINGLE_TABLE: Final = "single_table"
SQL: Final = "sql"
SEGMENTS: Final = ("standard", "premium", "new")
OPENING_STATUSES: Final = frozenset({"created", "pending", "placed"})
_EMAILS: Final = uuid.UUID("0c5d0b7e-3f1a-5c43-9d7e-6a1f2b8c4e90")
_USERS_READ: Final = frozenset({EventType.USER_ACTIVITY, EventType.ORDER_EVENT})
_SEED_THREADS: Final = 8  # the emulator serves concurrent requests faster than one at a time


def segment_of(user_id: str) -> str:
    """The segment the demo gives a user: a fixed function of the id (crc32), so the oracle knows it too."""
    return SEGMENTS[zlib.crc32(user_id.encode()) % len(SEGMENTS)]


def store_of(order_id: str, *, sql: bool) -> str:
    """Which store takes an order: the SQL store for odd crc32 of the id when it runs, else the single table."""
    return SQL if sql and zlib.crc32(order_id.encode()) % 2 else SINGLE_TABLE


class EventClock:
    """A store's clock: the time of the input event being applied (aware UTC). One per placing thread."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass
class ShopSummary:
    """What the shop did; counts by store (``single_table``, ``sql``) or by reason."""

    users: int = 0
    products: int = 0
    stock: int = 0
    sql: str = ""
    """Where the SQL store ran (``PostgreSQL on host:port``), or why it did not."""
    placed: Counter[str] = field(default_factory=Counter)
    committed: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    status_changes: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    """Order events that did not apply to a store, by reason (e.g. the later events of a rejected order)."""
    bridged: int = 0
    bridge_invocations: int = 0
    bridge_redeliveries: int = 0
    relayed: int = 0

    def as_json(self) -> dict[str, Any]:
        # Not asdict(): it rebuilds a Counter from its (key, count) pairs, counting the pairs.
        return {f.name: dict(v) if isinstance(v := getattr(self, f.name), Counter) else v for f in fields(self)}


class _Counted:
    """A :class:`~pipeline.stores.publish.Publisher` that counts the events its inner publisher delivered."""

    def __init__(self, inner: Producer) -> None:
        self.inner = inner
        self.delivered = 0
        self._pending: list[Event] = []

    def put_many(self, events: Iterable[Event]) -> None:
        batch = list(events)
        self._pending += batch
        self._counting(lambda: self.inner.put_many(batch), settles=False)  # may flush when its buffer is full

    def flush(self) -> None:
        self._counting(self.inner.flush, settles=True)

    def _counting(self, call: Callable[[], None], *, settles: bool) -> None:
        """Run ``call``; when it settles the buffer (a flush, or a failed send), count what was delivered."""
        try:
            call()
        except DeliveryError as exc:
            pending, self._pending = self._pending, []
            self.delivered += len(pending) - len(exc.undelivered)
            raise
        if settles:
            pending, self._pending = self._pending, []
            self.delivered += len(pending)


class DemoShop:
    """The shop on a deployed stack's single table (``table_name``, its stream read with ``streams``) and,
    when ``sql_backend`` is given, a migrated SQL store; CDC publishes to ``stream_name`` through
    ``kinesis`` (a client without botocore retries: the producers own them). Call :meth:`close` after."""

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        streams: Any,
        kinesis: Any,
        stream_name: str,
        sql_backend: SqlBackend | None,
        *,
        stock: int,
        sql_note: str,
    ) -> None:
        self.clocks = {SINGLE_TABLE: EventClock(datetime.now(UTC)), SQL: EventClock(datetime.now(UTC))}
        self.table = SingleTableRepository(dynamodb, table_name, clock=self.clocks[SINGLE_TABLE])
        self.sql = AuroraRepository(sql_backend, clock=self.clocks[SQL]) if sql_backend is not None else None
        self._lock = threading.Lock()  # the summary's counters
        self._cancelled = threading.Event()
        self.summary = ShopSummary(stock=stock, sql=sql_note)
        self._producers = [Producer(stream_name, kinesis, linger_seconds=0) for _ in range(2)]
        self._bridged = _Counted(self._producers[0])
        arn = dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        # 1,000 records a read: in AWS the mapping's filter hands the bridge order changes only (batches of
        # 100); here every change of the table (users, products, lines) comes through the same poller.
        self.poller = DynamoDBStreamPoller(streams, arn, StreamBridge(self._bridged).handle, batch_size=1000)
        self._relayed = _Counted(self._producers[1])
        self.relay = OutboxRelay(sql_backend, self._relayed) if sql_backend is not None else None
        self._orders: dict[str, str] = {}  # order id -> the status last committed (each order in one thread)
        self._rejected: set[str] = set()

    # ------------------------------------------------------------------ seeding

    def seed(self, events: Sequence[Event]) -> dict[str, str]:
        """Create the users and products ``events`` need (see the module docstring) in each store; the
        users' segments (what the consumer will read from the single table). Users of product views only
        are not created: nothing reads them."""
        users = sorted({e.user_id for e in events if e.user_id and e.event_type in _USERS_READ})
        prices: dict[str, Decimal] = {}
        for event in events:
            if isinstance(event.data, OrderData):
                for item in event.data.items:
                    prices.setdefault(item.product_id, item.price)
        if events:
            for clock in self.clocks.values():
                clock.now = min(e.timestamp for e in events)
        with ThreadPoolExecutor(_SEED_THREADS, thread_name_prefix="seed") as pool:
            try:
                products = pool.map(self._seed_product, prices.items())  # queued with the users: one pool
                created = [u for u, ok in zip(users, pool.map(self._seed_user, users), strict=True) if ok]
                self.summary.products = sum(products)
            except BaseException:  # Ctrl-C or SIGTERM: the queued entities are skipped, the pool ends at once
                self.cancel()
                raise
        self.summary.users = len(created)
        return {user: segment_of(user) for user in created}

    def cancel(self) -> None:
        """Make seeding and placing stop at the next entity (an interrupted demo); what is done stays done."""
        self._cancelled.set()

    def _seed_user(self, user_id: str) -> bool:
        if self._cancelled.is_set():
            return False
        email = f"{uuid.uuid5(_EMAILS, user_id)}@shop.example.com"
        name = f"Customer {user_id}"
        try:
            self.table.create_user(email, name, user_id=user_id, user_segment=segment_of(user_id))
            if self.sql is not None:
                self.sql.create_user(email, name, user_id=user_id, user_segment=segment_of(user_id))
        except (InvalidEntityError, DuplicateUserError, DuplicateEmailError):
            return False  # an id the stores refuse: its orders are rejected, its segment is the default
        return True

    def _seed_product(self, product: tuple[str, Decimal]) -> int:
        product_id, price = product
        if self._cancelled.is_set():
            return 0
        category = CATEGORIES[zlib.crc32(product_id.encode()) % len(CATEGORIES)]
        stock = self.summary.stock
        try:
            self.table.create_product(f"Product {product_id}", category, price, stock, product_id=product_id)
            if self.sql is not None:
                self.sql.create_product(f"Product {product_id}", category, price, stock, product_id=product_id)
        except (InvalidEntityError, DuplicateProductError):
            return 0
        return 1

    # ------------------------------------------------------------------ orders

    def place(self, events: Iterable[Event], *, pump_every: int = 50) -> None:
        """Apply the order events (others are ignored), each store's in input order on a thread of its own
        that pumps its CDC path every ``pump_every`` events and drains it at the end. Raises the first
        error of either thread after both ended."""
        by_store: dict[str, list[tuple[Event, OrderData]]] = {SINGLE_TABLE: [], SQL: []}
        for event in events:
            if isinstance(event.data, OrderData):
                by_store[store_of(event.data.order_id, sql=self.sql is not None)].append((event, event.data))
        errors: list[Exception] = []

        def run(store: str) -> None:
            try:
                for applied, (event, data) in enumerate(by_store[store], start=1):
                    if self._cancelled.is_set():
                        return
                    self._apply(store, event, data)
                    if applied % pump_every == 0:
                        self._pump(store)
                self._drain(store)
            except Exception as exc:  # noqa: BLE001 - handed to the caller, which raises it
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(store,), name=f"shop-{store}") for store in by_store]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._count()
        if errors:
            raise errors[0]

    def _tally(self, counter: Counter[str], key: str) -> None:
        with self._lock:
            counter[key] += 1

    def _apply(self, store: str, event: Event, data: OrderData) -> None:
        skipped = self.summary.skipped
        status = data.status.strip().lower()
        current = self._orders.get(data.order_id)
        if current is None:
            if data.order_id in self._rejected:
                self._tally(skipped, "event of a rejected order")
            elif status not in OPENING_STATUSES:
                self._tally(skipped, "status change of an order never placed")
            elif not event.user_id:
                self._tally(skipped, "order without a user")
            else:
                self._create(store, event, data, event.user_id)
            return
        if status in OPENING_STATUSES or status == current:
            self._tally(skipped, "status already committed")
        elif status not in TRANSITIONS.get(current, frozenset()):
            self._tally(skipped, f"{current} -> {status} is not a store transition")
        else:
            self.clocks[store].now = event.timestamp
            repo = self.sql if store == SQL and self.sql is not None else self.table
            try:
                repo.update_order_status(data.order_id, status, expected_status=current)
            except OrderStatusConflictError:  # pragma: no cover - one writer: the demo itself
                self._tally(skipped, "status conflict")
                return
            self._orders[data.order_id] = status
            self._tally(self.summary.status_changes, store)

    def _create(self, store: str, event: Event, data: OrderData, user_id: str) -> None:
        self._tally(self.summary.placed, store)
        self.clocks[store].now = event.timestamp
        try:
            lines = [OrderLine(item.product_id, item.quantity, item.price) for item in data.items]
            if store == SQL and self.sql is not None:
                self.sql.create_order_with_items(user_id, lines, order_id=data.order_id)
            else:
                self.table.create_order(user_id, lines, order_id=data.order_id)
        except InsufficientStockError:
            self._reject(data.order_id, "stock")
        except PriceChangedError:
            self._reject(data.order_id, "price")
        except DuplicateOrderError:
            self._reject(data.order_id, "duplicate order id")
        except (InvalidEntityError, OrderTooLargeError, NotFoundError):
            self._reject(data.order_id, "invalid for the store")
        else:
            self._orders[data.order_id] = "created"
            self._tally(self.summary.committed, store)

    def _reject(self, order_id: str, reason: str) -> None:
        self._rejected.add(order_id)
        self._tally(self.summary.rejected, reason)

    # ------------------------------------------------------------------ change data capture

    def _pump(self, store: str) -> None:
        """One round of the store's CDC path: a poll of the table's stream, or one outbox batch."""
        if store == SINGLE_TABLE:
            self.poller.poll_once()
        elif self.relay is not None:
            self.relay.drain_once()

    def _drain(self, store: str) -> None:
        """The store's CDC path until nothing it committed is left unpublished."""
        if store == SINGLE_TABLE:
            self.poller.run_until_idle(max_invocations=100_000)
        elif self.relay is not None:
            self.relay.drain()

    def _count(self) -> None:
        self.summary.bridged = self._bridged.delivered
        self.summary.relayed = self._relayed.delivered
        self.summary.bridge_invocations = self.poller.invocations
        self.summary.bridge_redeliveries = self.poller.redeliveries

    def close(self) -> None:
        for producer in self._producers:
            producer.close()
