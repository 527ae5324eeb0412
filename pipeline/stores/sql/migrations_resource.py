"""The CloudFormation custom resource that gives a deployed stack its tables: the SQL store's migrations.

CloudFormation invokes the function (``consumers/stores_migrations.py``) with a ``Create``, ``Update``
or ``Delete`` request and waits for one answer, sent the way AWS's ``cfn-response`` module sends it:
a ``PUT`` of a JSON document to the request's pre-signed ``ResponseURL``, with an empty
``Content-Type`` (the URL's signature covers none), holding ``Status`` (``SUCCESS``/``FAILED``),
``Reason`` (required when failed), ``PhysicalResourceId``, ``StackId``, ``RequestId`` and
``LogicalResourceId`` copied from the request, ``NoEcho`` and ``Data``; the body at most 4,096 bytes.

Guarantees:

- ``Create`` and ``Update`` apply every migration not applied yet with
  :func:`~pipeline.stores.sql.migrate.migrate` (each once, in order, in one transaction each, under an
  advisory lock), through the RDS Data API: a second run applies nothing (idempotent). ``Data`` holds
  ``Applied`` (the versions this request applied, comma-separated, maybe empty) and ``Latest``.
- The resource's ``Migrations`` property names the latest migration the template expects: changing it
  is what makes CloudFormation send an ``Update`` when a new migration ships. A package that does not
  hold that migration fails the request instead of reporting a schema it did not create.
- A paused Serverless v2 cluster that is resuming (:class:`StoreUnavailableError`) is retried with
  backoff while the invocation has more than :data:`SAFETY_SECONDS` left.
- ``Delete`` succeeds without touching the database: the schema lives as long as the cluster (whose
  ``DeletionPolicy: Snapshot`` keeps the data).
- Every request is answered exactly once, whatever happens: an error becomes ``FAILED`` with its reason
  (cut to keep the body under the limit), so CloudFormation never waits its hour for a reply. If the
  ``PUT`` itself fails, the error is logged and raised: nothing else can reach CloudFormation.
- ``PhysicalResourceId`` is ``<cluster ARN>/<database>/schema``: the same for every answer about one
  database, so an ``Update`` is a replacement only when the cluster or database changes (and the old
  resource's ``Delete`` is then a no-op).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Final

from pipeline.stores.errors import StoreUnavailableError
from pipeline.stores.sql.backend import SqlBackend
from pipeline.stores.sql.migrate import applied_migrations, load_migrations, migrate

__all__ = ["MAX_BODY_BYTES", "SAFETY_SECONDS", "MigrationsResource", "put_response", "response_body"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 4096
"""CloudFormation's limit on a custom resource response body."""
SAFETY_SECONDS: Final = 20.0
"""No retry starts when fewer seconds than this are left in the invocation: the answer must get out."""
_RESPONSE_TIMEOUT: Final = 30.0
_ATTEMPTS_WITHOUT_CONTEXT: Final = 5

BackendFactory = Callable[[Mapping[str, Any]], SqlBackend]
Sender = Callable[[str, bytes], None]


def put_response(url: str, body: bytes) -> None:
    """``PUT`` ``body`` to the pre-signed ``url`` CloudFormation gave (not an AWS API call: the URL is
    CloudFormation's, so no endpoint setting applies). Raises on any HTTP or network error."""
    if not url.startswith("https://") and not url.startswith("http://"):
        raise ValueError(f"ResponseURL is not an HTTP(S) URL: {url[:80]!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=_RESPONSE_TIMEOUT) as response:  # noqa: S310 - checked above
        response.read()


def response_body(
    event: Mapping[str, Any], status: str, physical_id: str, *, reason: str = "", data: Mapping[str, str] | None = None
) -> bytes:
    """The response document for ``event``; a long ``reason`` is cut so the body fits :data:`MAX_BODY_BYTES`."""
    document: dict[str, Any] = {
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId", ""),
        "RequestId": event.get("RequestId", ""),
        "LogicalResourceId": event.get("LogicalResourceId", ""),
        "NoEcho": False,
        "Data": dict(data or {}),
    }
    body = json.dumps(document).encode()
    if len(body) > MAX_BODY_BYTES:
        overflow = len(body) - MAX_BODY_BYTES + 3
        document["Reason"] = reason.encode()[: max(0, len(reason.encode()) - overflow)].decode(errors="ignore") + "..."
        body = json.dumps(document).encode()
    return body


class MigrationsResource:
    """Answers the custom resource's requests; see the module docstring. ``backend_for`` builds the SQL
    backend from the resource's properties (``ClusterArn``, ``SecretArn``, ``Database``)."""

    def __init__(
        self, backend_for: BackendFactory, *, send: Sender = put_response, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._backend_for = backend_for
        self._send = send
        self._sleep = sleep

    def handle(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Answer one request (through ``ResponseURL``); also returns the answer, for logs and tests."""
        props: Mapping[str, Any] = event.get("ResourceProperties") or {}
        physical_id = str(
            event.get("PhysicalResourceId")
            if event.get("RequestType") == "Delete" and event.get("PhysicalResourceId")
            else f"{props.get('ClusterArn', '')}/{props.get('Database', '')}/schema"
        )
        status, reason, data = "SUCCESS", "", {}
        try:
            request = event.get("RequestType")
            if request in ("Create", "Update"):
                data = self._migrate(props, context)
                reason = f"schema at {data['Latest']}; applied: {data['Applied'] or 'nothing (already current)'}"
            elif request != "Delete":
                raise ValueError(f"unknown RequestType {request!r}")
        except Exception as exc:  # every request must be answered, or CloudFormation waits an hour for it
            log.exception("migrations request failed")
            status, reason, data = "FAILED", f"{type(exc).__name__}: {exc}", {}
        body = response_body(event, status, physical_id, reason=reason, data=data)
        self._send(str(event.get("ResponseURL", "")), body)
        answer: dict[str, Any] = json.loads(body)
        return answer

    def _migrate(self, props: Mapping[str, Any], context: Any) -> dict[str, str]:
        for key in ("ClusterArn", "SecretArn", "Database", "Migrations"):
            if not props.get(key):
                raise ValueError(f"the resource property {key} is missing")
        shipped = [m.version for m in load_migrations()]
        if props["Migrations"] not in shipped:
            raise ValueError(f"the template expects migration {props['Migrations']}; this package ships {shipped}")
        backend = self._backend_for(props)
        delay = 1.0
        for attempt in range(1, 1_000):
            try:
                applied = migrate(backend)
                return {"Applied": ",".join(applied), "Latest": applied_migrations(backend)[-1]}
            except StoreUnavailableError:
                left = _seconds_left(context)
                if (left - delay < SAFETY_SECONDS) if left is not None else attempt >= _ATTEMPTS_WITHOUT_CONTEXT:
                    raise
                log.warning("the database is not available yet; retrying in %.0f s", delay)
                self._sleep(delay)
                delay = min(delay * 2, 15.0)
        raise StoreUnavailableError("the database did not become available")  # pragma: no cover - bounded above


def _seconds_left(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else None
