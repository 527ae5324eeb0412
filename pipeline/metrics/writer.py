"""Apply a batch's metric effects to DynamoDB (and SQS) exactly once, in a few batched calls.

Contract of :meth:`DynamoMetricWriter.flush` ``(shard_id, effects) -> FlushResult``:

- **Coalesced**: at most one write per distinct item per flush in the normal case (``Add`` amounts
  summed per attribute, the best ``Extreme`` per attribute with its companions, one ``PutOnce`` per
  key, one message per ``dedup_id``). Writes go out as PartiQL ``BatchExecuteStatement`` (25 a call),
  reads as ``BatchGetItem`` (100 keys a call, ``ConsistentRead``), messages as ``SendMessageBatch``
  (10 a call), on a pool of ``max_concurrency`` threads. Never one blocking call per item.
- **Per-shard partial items**: effects on a partial table (``order_metrics``, ``product_metrics``,
  ``system_metrics``; :mod:`pipeline.metrics.partials`) are written to the flushing shard's own
  partial of the item (sort key ``<logical>~<shard ordinal>``), so each stored item carries at most
  one watermark, and its size and write units do not grow with the number of shards. Readers merge
  the partials (:func:`~pipeline.metrics.partials.merge_items`). With ``key_split`` K > 1 the
  partition key gains ``~<shard ordinal mod K>`` too (hot-key write sharding).
- **Exactly once**: ``Add`` through a per-shard watermark on the item (``"_pos_<shard_id>"``, the
  position of the last event of that shard the item includes, see the timeline below); ``Extreme``
  written only when it beats the stored value, so it never moves backwards; ``PutOnce`` by INSERT,
  where ``DuplicateItem`` means an earlier write won; messages by the FIFO queue's
  ``MessageDeduplicationId``. So a retried or re-delivered batch, a bisected batch, a crash in the
  middle of a flush, or another shard's writer on the same items never double-counts.
- **Phases are barriers**: (1) PutOnce, (2) Add/Extreme, (3) messages. If a phase still has
  something unpersisted after ``max_rounds`` rounds, later phases are not attempted, and
  ``failed_from`` is the lowest position over every effect not persisted, attempted or not. Every
  event before ``failed_from`` then has all its effects persisted: checkpointing Lambda at
  ``failed_from``'s record (``batchItemFailures``) is safe, and re-processing from there is harmless.
- **Retries**: throttling, ``ProvisionedThroughputExceeded``, ``InternalServerError``,
  ``TransactionConflict`` (per statement or for a whole call) and dropped connections are retried with
  exponential backoff and jitter; a failed condition or ``DuplicateItem`` means the writer's belief
  about the item was stale: it takes the stored item returned with the failure (``ALL_OLD``) or
  re-reads it, and recomputes. Validation errors are bugs: :class:`MetricWriteError` is raised
  (a missing table: :class:`~pipeline.exceptions.ConfigurationError`). Build the boto3 clients with
  ``Settings.max_attempts=1`` to leave every retry to the writer, or keep botocore's for whole calls.
- **Cache**: each container remembers, per item, the last state it confirmed (LRU of ``cache_size``
  items, a few hundred bytes each): steady-state flushes of hot items need no reads, and a flush of
  effects already applied sends nothing. Stored watermarks and extremes only move forward, so a stale
  entry costs one failed condition, never correctness.

:meth:`DynamoMetricWriter.read` serves the batch context (sessions, claims, segments) with the same
batched consistent reads, and teaches the cache what it read.

Assumptions: a flush holds whole events (all effects of a position, in one call) from one shard, in
stream order from the checkpoint; one writer at a time per shard (Lambda's default
``ParallelizationFactor`` of 1); stored items are only changed by these writers (no deletes); plugins
are pure, so a re-delivered event yields the same effects. Values are ``int``, ``Decimal`` or
``str``. Messages retried after a failure may reach their FIFO group after later ones. Not
thread-safe: one flush at a time per writer; separate writers (threads, processes) may share tables.

The condition timeline of one item for shard ``s`` (``W`` is its attribute ``"_pos_s"``; on a partial
table the item is ``s``'s own partial, which no other shard writes)::

    flush 1 (contributions at p2, p5)            flush 2 (re-delivery from p3: p5, p7)
    -----------------------------------------    ---------------------------------------------
    state unknown -> BatchGetItem: missing       state from the cache (or a read): W = p5
    INSERT {key, n: a2+a5, W: p5}                keep positions > W: p7 (p5 is already in)
      DuplicateItem -> another shard created     UPDATE SET n = n + a7, W = p7
        it meanwhile: re-read, then UPDATE         WHERE key AND W = p5 AND n IS NOT MISSING
        as on the right                            ok -> cache W = p7
      throttled -> same INSERT, next round         ConditionalCheckFailed -> W is not p5 any more
                                                     (this very UPDATE applied before a crash or
                                                     a timeout, or the cache was stale): take the
                                                     item returned (ALL_OLD) or re-read, keep the
                                                     positions > the stored W (none if it applied),
                                                     write again or stop
                                                   throttled -> same UPDATE, next round

A new counter attribute is ``SET b = ?`` with ``b IS MISSING``; an extreme is ``SET mx = ?`` with
``mx < ?`` (max) or ``mx IS MISSING``. A statement names only its own shard's watermark, so writers of
other shards never invalidate it; on an item they share (tables that are not partial) they can only
race on a new attribute or an extreme, which costs one failed condition and a recompute from the
returned item. "DuplicateItem -> another shard created it" then applies to shared items only; on a
partial it means this shard's own earlier INSERT applied (a crash or a timeout) and the cache missed it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import orjson
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from pipeline.exceptions import ConfigurationError
from pipeline.metrics.effects import ItemKey, Message
from pipeline.metrics.flush import OK, TRANSIENT, EngineSink, FlushEngine, Outcome, Tally, WriteResult
from pipeline.metrics.plan import ItemRef, ItemWrite, MetricWriteError, State
from pipeline.metrics.statements import from_attribute_values, item_statement, key_attribute_values
from pipeline.metrics.tables import Resources
from pipeline.retry import Deadline, RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import BatchStatementResponseTypeDef
    from mypy_boto3_sqs import SQSClient

__all__ = ["KEYS_PER_READ", "MESSAGES_PER_CALL", "STATEMENTS_PER_CALL", "DynamoMetricWriter"]

logger = logging.getLogger(__name__)

STATEMENTS_PER_CALL = 25
KEYS_PER_READ = 100
MESSAGES_PER_CALL = 10
_TRANSIENT_CALL_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        # SQS
        "RequestThrottled",
        "InternalError",
        "InternalFailure",
        "KmsThrottled",
        "AWS.SimpleQueueService.ServiceUnavailable",
    }
)
_TRANSIENT_STATEMENT_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceeded",
        "ThrottlingError",
        "RequestLimitExceeded",
        "InternalServerError",
        "TransactionConflict",
    }
)
_TRANSPORT_ERRORS = (BotoConnectionError, HTTPClientError)


class DynamoMetricWriter(EngineSink):
    """Applies positioned effects exactly once; see the module docstring for the contract.

    ``dynamodb`` and ``sqs`` are botocore clients (built once per container, botocore's own retries off:
    the engine retries by ``retry``); ``resources`` maps logical table and queue names to physical ones;
    ``call_seconds`` is the longest one call can take (the clients' connect plus read timeouts), so no
    retry starts that could not end before a deadline. ``sleep`` is injectable for tests. ``key_split``
    is the deployment's hot-key write sharding (``MetricKeySplit``, :mod:`pipeline.metrics.partials`).

    It is the metric :class:`~pipeline.sinks.Sink`: :meth:`add` positioned effects, :meth:`flush` them.
    Not thread-safe (one batch at a time; it runs its calls on its own small pool).
    """

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        sqs: SQSClient,
        resources: Resources,
        *,
        retry: RetryPolicy | None = None,
        call_seconds: float = 0.0,
        max_concurrency: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        cache_size: int = 200_000,
        key_split: int = 1,
    ) -> None:
        self._backend = _DynamoBackend(dynamodb, sqs, resources, max_concurrency, call_seconds)
        engine = FlushEngine(
            self._backend,
            retry=retry,
            call_seconds=call_seconds,
            sleep=sleep,
            cache_size=cache_size,
            key_split=key_split,
        )
        super().__init__(engine)

    def close(self) -> None:
        """Stop the worker threads (a Lambda container never needs to; tests do)."""
        self._backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _DynamoBackend:
    def __init__(
        self, dynamodb: DynamoDBClient, sqs: SQSClient, resources: Resources, max_concurrency: int, call_seconds: float
    ) -> None:
        self._call_seconds = call_seconds
        self._dynamodb = dynamodb
        self._sqs = sqs
        self._resources = resources
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="metric-writer")
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- writes: BatchExecuteStatement, 25 statements a call -------------------------------------
    def write(self, writes: Sequence[ItemWrite], tally: Tally, deadline: Deadline) -> list[WriteResult]:
        results: list[WriteResult] = [TRANSIENT] * len(writes)

        def run(start: int) -> None:
            if not deadline.allows(self._call_seconds):
                return
            chunk = writes[start : start + STATEMENTS_PER_CALL]
            statements = [item_statement(self._resources.table(w.table), w) for w in chunk]
            tally.add(api_calls=1, item_writes=len(statements))
            try:
                response = self._dynamodb.batch_execute_statement(Statements=statements)  # type: ignore[arg-type]
            except ClientError as exc:
                _raise_unless_transient(exc, "BatchExecuteStatement")
                return
            except _TRANSPORT_ERRORS:
                return
            for offset, answer in enumerate(response["Responses"]):
                results[start + offset] = _statement_result(answer, statements[offset]["Statement"])

        self._run_all(run, range(0, len(writes), STATEMENTS_PER_CALL))
        return results

    # -- reads: BatchGetItem, 100 keys a call, ConsistentRead; unprocessed keys are the engine's next round
    def read(self, refs: Sequence[ItemRef], tally: Tally, deadline: Deadline) -> dict[ItemRef, State | None]:
        found: dict[ItemRef, State | None] = {}

        def run(start: int) -> None:
            chunk = refs[start : start + KEYS_PER_READ]
            if not deadline.allows(self._call_seconds):
                tally.add(retries=len(chunk))
                return
            names: dict[str, tuple[str, ...]] = {}  # physical table -> key attribute names, in order
            wanted: dict[tuple[str, tuple[object, ...]], ItemRef] = {}
            request: dict[str, Any] = {}
            for ref in chunk:
                physical = self._resources.table(ref[0])
                names[physical] = tuple(name for name, _ in ref[1])
                wanted[(physical, _key_values(ref[1]))] = ref
                request.setdefault(physical, {"Keys": [], "ConsistentRead": True})["Keys"].append(
                    key_attribute_values(ref[1])
                )

            def ref_of(physical: str, item: State) -> ItemRef:
                return wanted[(physical, tuple(item[name] for name in names[physical]))]

            tally.add(api_calls=1, reads=len(chunk))
            try:
                response = self._dynamodb.batch_get_item(RequestItems=request)
            except ClientError as exc:
                _raise_unless_transient(exc, "BatchGetItem")
                tally.add(retries=len(chunk))
                return
            except _TRANSPORT_ERRORS:
                tally.add(retries=len(chunk))
                return
            resolved: dict[ItemRef, State | None] = {}
            for physical, items in response.get("Responses", {}).items():
                for item in items:
                    state = from_attribute_values(item)
                    resolved[ref_of(physical, state)] = state
            still = {
                ref_of(physical, from_attribute_values(key))
                for physical, table in (response.get("UnprocessedKeys") or {}).items()
                for key in table["Keys"]
            }
            tally.add(retries=len(still))
            for ref in chunk:  # asked, answered, not returned: no such item
                if ref not in still and ref not in resolved:
                    resolved[ref] = None
            with self._lock:
                found.update(resolved)

        self._run_all(run, range(0, len(refs), KEYS_PER_READ))
        return found

    # -- messages: SendMessageBatch, 10 a call, only failed entries retried -----------------------
    def send(self, messages: Sequence[Message], tally: Tally, deadline: Deadline) -> list[bool]:
        accepted = [False] * len(messages)
        by_queue: dict[str, list[int]] = {}
        for index, message in enumerate(messages):
            by_queue.setdefault(message.queue, []).append(index)
        chunks = [
            (queue, indices[i : i + MESSAGES_PER_CALL])
            for queue, indices in by_queue.items()
            for i in range(0, len(indices), MESSAGES_PER_CALL)
        ]

        def run(chunk: tuple[str, list[int]]) -> None:
            if not deadline.allows(self._call_seconds):
                return
            queue, indices = chunk
            url = self._resources.queues.get(queue)
            if not url:
                raise ConfigurationError(f"no queue URL configured for {queue!r}")
            entries = [_message_entry(str(n), messages[i]) for n, i in enumerate(indices)]
            tally.add(api_calls=1)
            try:
                response = self._sqs.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
            except ClientError as exc:
                _raise_unless_transient(exc, "SendMessageBatch")
                return
            except _TRANSPORT_ERRORS:
                return
            for failure in response.get("Failed", []):
                if failure.get("SenderFault"):
                    raise MetricWriteError(f"SQS refused a message: {failure.get('Code')}: {failure.get('Message')}")
            ok = [int(entry["Id"]) for entry in response.get("Successful", [])]
            for n in ok:
                accepted[indices[n]] = True
            tally.add(messages=len(ok))

        self._run_all(run, chunks)
        return accepted

    def _run_all(self, fn: Callable[[Any], None], jobs: Sequence[Any]) -> None:
        """Run ``fn`` over ``jobs`` on the pool; wait for all, then raise the first error if any."""
        if len(jobs) == 1:
            fn(jobs[0])
            return
        futures: list[Future[None]] = [self._pool.submit(fn, job) for job in jobs]
        wait(futures)
        for future in futures:
            error = future.exception()
            if error is not None:
                raise error


def _key_values(key: ItemKey) -> tuple[object, ...]:
    # ints and Decimals hash and compare equal (1 == Decimal("1")), so read-back keys map to refs
    return tuple(value for _, value in key)


def _statement_result(answer: BatchStatementResponseTypeDef, statement: str) -> WriteResult:
    error = answer.get("Error")
    if not error:
        return OK
    code = error.get("Code", "")
    if code == Outcome.CONFLICT.value:
        item = error.get("Item")
        return WriteResult(Outcome.CONFLICT, from_attribute_values(item) if item else None)
    if code == Outcome.DUPLICATE.value:
        return WriteResult(Outcome.DUPLICATE)
    if code in _TRANSIENT_STATEMENT_ERRORS:
        return TRANSIENT
    if code == "ResourceNotFound":
        raise ConfigurationError(f"table not found for: {statement[:120]}")
    raise MetricWriteError(f"{code}: {error.get('Message', '')} in: {statement[:300]}")


def _raise_unless_transient(exc: ClientError, operation: str) -> None:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in _TRANSIENT_CALL_ERRORS:
        logger.debug("%s failed transiently: %s", operation, code)
        return
    if code in {"ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}:
        raise ConfigurationError(f"{operation}: {exc}") from exc
    raise MetricWriteError(f"{operation}: {exc}") from exc


def _message_entry(entry_id: str, message: Message) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Id": entry_id,
        "MessageBody": encode_body(message),
        "MessageDeduplicationId": message.dedup_id,
        "MessageGroupId": message.group_id,
    }
    if message.attributes:
        entry["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value} for name, value in message.attributes.items()
        }
    return entry


def encode_body(message: Message) -> str:
    """The message body as JSON: keys sorted, ``Decimal`` as its exact string (as on the event wire)."""
    return orjson.dumps(message.body, default=_json_default, option=orjson.OPT_SORT_KEYS).decode()


def _json_default(value: object) -> object:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable in a message body: {type(value).__name__}")
