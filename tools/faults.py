"""Fault injection through botocore event hooks on a real client: for tests, and for ``--fault-rate``.

No emulator throttles or fails anything by itself, so faults are made on the client side, where the
code under test cannot tell them from the real thing:

- **Partial PutRecords failures** (:meth:`FaultInjector.fail_put_records`): each entry fails
  independently with probability ``rate``. A failed entry is taken out of the request before it is
  serialised, so it is really not written; the response gets it back at its original position with
  ``ErrorCode: ProvisionedThroughputExceededException`` and ``FailedRecordCount`` counts it, as Kinesis
  reports a throttled entry. The other entries are really written, in their order. If every entry of
  a call fails, no request is sent at all.
- **Throttling** (:meth:`FaultInjector.throttle`): each HTTP attempt of the chosen operations is, with
  probability ``rate``, answered without being sent by a synthetic HTTP 400 whose ``__type`` is
  ``ProvisionedThroughputExceededException`` (or the given code). botocore's retry handler classifies it
  as throttling and retries within the client's budget (``max_attempts``, backoff and the client's retry
  quota, which these retries drain); when every attempt is throttled the caller gets the modeled
  exception, ``client.exceptions.ProvisionedThroughputExceededException``.

All draws come from one seeded :class:`random.Random`: one thread making the same calls gets the same
faults. Thread-safe: draws and counters share one lock, and per-call state lives in botocore's
per-call context. :meth:`FaultInjector.detach` removes every hook from every client it was attached to;
call it between calls, not while another thread is inside one (a PutRecords call caught half-way would
lose its withheld entries from the response). Attaching the same fault twice to one client keeps the first.

- **Partial batch failures** (:meth:`FaultInjector.fail_batch_entries`): the same withholding for
  DynamoDB ``BatchExecuteStatement``, ``BatchWriteItem``, ``BatchGetItem`` and SQS ``SendMessageBatch``,
  each reported the way that service reports an entry it throttled (see :mod:`tools.fault_batches`).
- **Everything at once** (:meth:`FaultInjector.chaos`): throttles on every operation of a client
  (json services: a 400 throttling error, ``TransactionCanceledException`` with a ``ThrottlingError``
  reason for ``TransactWriteItems``; S3: a 503 ``SlowDown``), plus the partial failures above and
  PutRecords'. :meth:`FaultInjector.on_every_client` applies a setup to every client built while it is
  active, for code that builds its own clients (the live runtime and the consumer).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.compat import HTTPHeaders
from botocore.session import Session

from pipeline.exceptions import ConfigurationError
from tools.fault_batches import BATCH_OPERATIONS

__all__ = ["THROUGHPUT_EXCEEDED", "FaultCounts", "FaultInjector"]

THROUGHPUT_EXCEEDED = "ProvisionedThroughputExceededException"
_INJECTED = "(injected by tools.faults)"
# json 1.0 services name their errors with a namespace; botocore keeps the part after '#'.
_TYPE_PREFIX = {"dynamodb": "com.amazonaws.dynamodb.v20120810#"}
_PROTOCOLS = frozenset({"json", "rest-xml"})  # the ones a synthetic throttling answer is modelled for


@dataclass(frozen=True, slots=True)
class FaultCounts:
    """What an injector has done so far."""

    failed_entries: int = 0  # PutRecords entries withheld and reported failed to the caller
    throttled_requests: int = 0  # HTTP attempts answered with a synthetic throttling error (retries count)
    failed_batch_entries: int = 0  # batch entries (statements, writes, keys, messages) withheld

    def as_dict(self) -> dict[str, int]:
        return {
            "failed_entries": self.failed_entries,
            "throttled_requests": self.throttled_requests,
            "failed_batch_entries": self.failed_batch_entries,
        }


@dataclass(frozen=True, slots=True)
class _Withheld:
    """Per-call state between the request and the response hooks."""

    total: int
    failed: frozenset[int]
    stream: str


class _Body:
    """The ``raw`` of a synthetic :class:`AWSResponse`: botocore only calls ``stream()``."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class FaultInjector:
    """Attaches faults to boto3 clients; see the module docstring for what each fault does.

    ``seed`` makes the faults reproducible (``None``: seeded from the OS). Usable as a context manager
    that detaches on exit.
    """

    def __init__(self, *, seed: int | None = 0) -> None:
        self._random = random.Random(seed)  # noqa: S311 - fault draws, not secrets
        self._lock = threading.Lock()
        self._failed_entries = 0
        self._throttled_requests = 0
        self._failed_batch_entries = 0
        self._hooks: list[tuple[BaseClient, str, str]] = []  # (client, event name, unique id)
        self._id = uuid.uuid4().hex[:12]

    @property
    def counts(self) -> FaultCounts:
        with self._lock:
            return FaultCounts(self._failed_entries, self._throttled_requests, self._failed_batch_entries)

    def fail_put_records(self, client: BaseClient, rate: float) -> None:
        """Make each entry of ``client``'s PutRecords calls fail with probability ``rate`` (not written)."""
        _check_rate(rate)
        if client.meta.service_model.service_name != "kinesis":
            raise ConfigurationError(f"fail_put_records needs a kinesis client, not {client.meta.service_model}")
        key = f"tools.faults.{self._id}.withheld"

        def withhold(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            records = params.get("Records")
            if not isinstance(records, list) or not records:
                return  # botocore's validation reports it
            failed = self._draw(len(records), rate)
            if not failed:
                return
            stream = str(params.get("StreamName") or params.get("StreamARN") or "?")
            context[key] = _Withheld(total=len(records), failed=failed, stream=stream)
            if len(failed) < len(records):  # a new list: the caller's list is left as it was
                params["Records"] = [record for i, record in enumerate(records) if i not in failed]

        def skip_if_all_withheld(
            params: dict[str, Any], context: dict[str, Any], **_: Any
        ) -> tuple[AWSResponse, dict[str, Any]] | None:
            withheld = context.get(key)
            if withheld is None or len(withheld.failed) < withheld.total:
                return None
            response = AWSResponse(params.get("url", ""), 200, HTTPHeaders.from_dict({}), _Body(b""))
            metadata = {"RequestId": str(uuid.uuid4()), "HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0}
            return response, {"FailedRecordCount": 0, "Records": [], "ResponseMetadata": metadata}

        def report(http_response: AWSResponse, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            withheld: _Withheld | None = context.pop(key, None)
            if withheld is None or http_response.status_code >= 300:
                return  # the caller gets the error; nothing withheld is counted
            sent = iter(parsed.get("Records", []))
            failure = {
                "ErrorCode": THROUGHPUT_EXCEEDED,
                "ErrorMessage": f"Rate exceeded for stream {withheld.stream} {_INJECTED}",
            }
            parsed["Records"] = [dict(failure) if i in withheld.failed else next(sent) for i in range(withheld.total)]
            parsed["FailedRecordCount"] = int(parsed.get("FailedRecordCount", 0)) + len(withheld.failed)
            with self._lock:
                self._failed_entries += len(withheld.failed)

        self._register(client, "before-parameter-build.kinesis.PutRecords", withhold)
        self._register(client, "before-call.kinesis.PutRecords", skip_if_all_withheld)
        self._register(client, "after-call.kinesis.PutRecords", report)

    def throttle(
        self,
        client: BaseClient,
        rate: float,
        *,
        operations: Iterable[str] = ("PutRecords",),
        error_code: str = THROUGHPUT_EXCEEDED,
    ) -> None:
        """Answer each HTTP attempt of ``operations`` with a throttling error with probability ``rate``.

        json-protocol services (Kinesis, DynamoDB, SQS, Firehose) get a 400 whose ``__type`` is
        ``error_code``; DynamoDB callers may pass ``error_code="ThrottlingException"``, which botocore also
        retries but has no modeled class for. S3 (rest-xml) gets a 503 ``SlowDown``, whatever ``error_code``.
        """
        _check_rate(rate)
        model = client.meta.service_model
        names = tuple(operations)
        unknown = sorted(set(names) - set(model.operation_names))
        if unknown:
            raise ConfigurationError(f"{model.service_name} has no operation(s) {', '.join(unknown)}")
        answer = self._throttling_answer(model, rate, lambda _operation: error_code)
        service_id = model.service_id.hyphenize()
        for name in names:
            self._register(client, f"before-send.{service_id}.{name}", answer)

    def fail_batch_entries(self, client: BaseClient, rate: float) -> None:
        """Make each entry of ``client``'s batch calls (see :mod:`tools.fault_batches`) fail with probability
        ``rate``: withheld from the request, reported unprocessed in the response."""
        _check_rate(rate)
        service = client.meta.service_model.service_name
        for (owner, operation), adapter in BATCH_OPERATIONS.items():
            if owner != service:
                continue
            key = f"tools.faults.{self._id}.{operation}"

            def withhold(
                params: dict[str, Any], context: dict[str, Any], _a: Any = adapter, _k: str = key, **_: Any
            ) -> None:
                entries = _a.entries(params)
                failed = self._draw(len(entries), rate) if entries else frozenset()
                if failed:
                    context[_k] = (entries, failed)
                    _a.keep(params, [e for i, e in enumerate(entries) if i not in failed])

            def skip_if_all_withheld(
                params: dict[str, Any], context: dict[str, Any], _a: Any = adapter, _k: str = key, **_: Any
            ) -> tuple[AWSResponse, dict[str, Any]] | None:
                withheld = context.get(_k)
                if withheld is None or len(withheld[1]) < len(withheld[0]):
                    return None
                response = AWSResponse(params.get("url", ""), 200, HTTPHeaders.from_dict({}), _Body(b""))
                metadata = {
                    "RequestId": str(uuid.uuid4()),
                    "HTTPStatusCode": 200,
                    "HTTPHeaders": {},
                    "RetryAttempts": 0,
                }
                return response, {**_a.empty(), "ResponseMetadata": metadata}

            def report(
                http_response: AWSResponse,
                parsed: dict[str, Any],
                context: dict[str, Any],
                _a: Any = adapter,
                _k: str = key,
                **_: Any,
            ) -> None:
                withheld = context.pop(_k, None)
                if withheld is None or http_response.status_code >= 300:
                    return
                _a.report(parsed, *withheld)
                with self._lock:
                    self._failed_batch_entries += len(withheld[1])

            self._register(client, f"before-parameter-build.{service}.{operation}", withhold)
            self._register(client, f"before-call.{service}.{operation}", skip_if_all_withheld)
            self._register(client, f"after-call.{service}.{operation}", report)

    def chaos(self, client: BaseClient, rate: float) -> None:
        """Every fault this injector knows, at ``rate``, on every operation of ``client``: throttles on each
        HTTP attempt, plus partial failures of PutRecords and of the batch calls. See the module docstring.
        A client of another protocol than json or rest-xml (CloudWatch) is left as it is."""
        _check_rate(rate)
        model = client.meta.service_model
        if model.protocol not in _PROTOCOLS:
            return  # e.g. CloudWatch (query, cbor): no synthetic answer is modelled for it; left untouched

        def code(operation: str) -> str:
            if operation == "TransactWriteItems":
                return "TransactionCanceledException"
            return {"sqs": "RequestThrottled"}.get(model.service_name, THROUGHPUT_EXCEEDED)

        self._register(
            client, f"before-send.{model.service_id.hyphenize()}", self._throttling_answer(model, rate, code)
        )
        if model.service_name == "kinesis":
            self.fail_put_records(client, rate)
        self.fail_batch_entries(client, rate)

    @contextlib.contextmanager
    def on_every_client(self, setup: Callable[[BaseClient], None]) -> Iterator[None]:
        """While active, ``setup(client)`` runs on every botocore client this process builds (any session),
        e.g. ``lambda c: injector.chaos(c, 0.05)``. Clients built before keep running without it."""
        original = Session.create_client

        def create_client(session: Session, *args: Any, **kwargs: Any) -> BaseClient:
            client = original(session, *args, **kwargs)
            setup(client)
            return client

        Session.create_client = create_client  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            Session.create_client = original  # type: ignore[method-assign]

    def _throttling_answer(
        self, model: Any, rate: float, code_of: Callable[[str], str]
    ) -> Callable[..., AWSResponse | None]:
        if model.protocol not in _PROTOCOLS:
            raise ConfigurationError(f"throttle supports json and rest-xml clients, not {model.service_name}")
        prefix = _TYPE_PREFIX.get(model.service_name, "")
        content_type = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"

        def answer(request: AWSPreparedRequest, event_name: str = "", **_: Any) -> AWSResponse | None:
            if not self._chance(rate):
                return None
            with self._lock:
                self._throttled_requests += 1
            headers = {"x-amzn-RequestId": str(uuid.uuid4())}
            if model.protocol == "rest-xml":
                body = (
                    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                    b"<Message>Please reduce your request rate. (injected by tools.faults)</Message></Error>"
                )
                status = 503
                headers["Content-Type"] = "application/xml"
            else:
                code = code_of(event_name.rsplit(".", 1)[-1])
                error: dict[str, Any] = {"__type": prefix + code, "message": f"Rate exceeded {_INJECTED}"}
                if code == "TransactionCanceledException":
                    error["CancellationReasons"] = [{"Code": "ThrottlingError", "Message": "Throughput exceeds limits"}]
                body, status = json.dumps(error).encode(), 400
                headers["Content-Type"] = content_type
            headers["Content-Length"] = str(len(body))
            return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), _Body(body))

        return answer

    def stub(self, client: BaseClient, answers: Mapping[str, Mapping[str, Any]]) -> None:
        """Answer every HTTP attempt of the operations in ``answers`` (operation -> parsed JSON body) with
        an HTTP 200 of that body, without sending it: a store that is always there and always empty,
        for tests that need no endpoint. Hooks attached earlier (a throttle) answer first. json
        protocol only."""
        model = client.meta.service_model
        if model.protocol != "json":
            raise ConfigurationError(f"stub supports json-protocol clients, not {model.service_name}")
        content_type = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"
        service_id = model.service_id.hyphenize()
        for name, parsed in answers.items():
            body = json.dumps(parsed).encode()

            def answer(request: AWSPreparedRequest, _body: bytes = body, **_: Any) -> AWSResponse:
                headers = {"Content-Type": content_type, "Content-Length": str(len(_body))}
                return AWSResponse(request.url, 200, HTTPHeaders.from_dict(headers), _Body(_body))

            self._register(client, f"before-send.{service_id}.{name}", answer)

    def detach(self) -> None:
        """Remove every hook this injector attached; the clients behave normally again. Idempotent."""
        for client, event_name, unique_id in self._hooks:
            client.meta.events.unregister(event_name, unique_id=unique_id)
        self._hooks.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.detach()

    def _register(self, client: BaseClient, event_name: str, handler: Any) -> None:
        unique_id = f"tools.faults.{self._id}.{event_name}"
        client.meta.events.register(event_name, handler, unique_id=unique_id)
        self._hooks.append((client, event_name, unique_id))

    def _chance(self, rate: float) -> bool:
        with self._lock:
            return self._random.random() < rate

    def _draw(self, n: int, rate: float) -> frozenset[int]:
        with self._lock:
            return frozenset(i for i in range(n) if self._random.random() < rate)


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ConfigurationError(f"a fault rate is a probability between 0 and 1, not {rate!r}")
