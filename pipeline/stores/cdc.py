"""Change data capture for the single table: its DynamoDB stream -> ``order_event`` s on the events stream.

A committed order change (the order item inserted, or its status changed) is on the table's stream
(``NEW_AND_OLD_IMAGES``) because it was committed: there is no second write from the service, so the
metrics and the store cannot disagree. :class:`StreamBridge` takes the DynamoDB Streams Lambda event,
turns each order change into its event (:func:`order_event_of`) and publishes them with the project's
producer (:class:`~pipeline.stores.publish.Publisher`).

Failure contract, as the Kinesis consumer's (``ReportBatchItemFailures``): when some events are not
delivered, the response names the **first** record (stream order) whose event was not delivered, by
its ``SequenceNumber``; Lambda checkpoints before it and re-delivers it and everything after it.
Records after it may already be published; their re-delivery publishes the **same event ids**
(deterministic: order id, status, version), which the consumer deduplicates. A crash anywhere
(before, during, after the publish) has the same outcome: nothing lost, replays deduplicated by id.

Which records become events: ``INSERT`` of an order item (status ``created``) and ``MODIFY`` of an
order item whose status changed. Everything else (users, products, lines, reviews, removals, order
updates that keep the status) is skipped; the template's event filter already keeps most of it out.

Why not a Kinesis streaming destination for the table: it would put DynamoDB change records, not
events, on the stream; every reader (consumer, archive, analytics) would have to understand them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from pipeline.events import Event, parse_event
from pipeline.exceptions import ConfigurationError, DeliveryError, EventValidationError
from pipeline.stores.attributes import from_item
from pipeline.stores.errors import InvalidEntityError
from pipeline.stores.items import lines_from
from pipeline.stores.order_events import order_event_wire
from pipeline.stores.publish import Publisher

__all__ = ["EVENT_SOURCE", "STREAM_ENV", "StreamBridge", "events_stream_from_env", "order_event_of"]

log = logging.getLogger(__name__)

EVENT_SOURCE: Final = "stores.single_table"
STREAM_ENV: Final = "EVENTS_STREAM"


def events_stream_from_env(environ: Mapping[str, str]) -> str:
    """The events stream's name (``EVENTS_STREAM``); :class:`ConfigurationError` when unset."""
    name = environ.get(STREAM_ENV, "")
    if not name:
        raise ConfigurationError(f"{STREAM_ENV} is not set: the stream the bridge publishes order events to")
    return name


def order_event_of(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``order_event`` (wire dict) one DynamoDB Streams record stands for, or ``None``.

    Raises :class:`InvalidEntityError` for an order image that cannot make an event (a bug upstream).
    """
    change = record.get("dynamodb", {})
    new = change.get("NewImage")
    if record.get("eventName") not in {"INSERT", "MODIFY"} or not new:
        return None
    image = from_item(new)
    if image.get("entity_type") != "ORDER":
        return None
    if record["eventName"] == "MODIFY":
        old = from_item(change.get("OldImage") or {})
        if old.get("status") == image.get("status"):
            return None
    try:
        return order_event_wire(
            order_id=image["order_id"],
            user_id=image["user_id"],
            status=image["status"],
            version=int(image["version"]),
            total_amount=Decimal(image["total_amount"]),
            lines=lines_from(image["lines"]),
            occurred_at=datetime.fromisoformat(image["updated_at"].replace("Z", "+00:00")),
            source=EVENT_SOURCE,
        )
    except (KeyError, TypeError, ValueError, ArithmeticError, InvalidEntityError) as exc:
        raise InvalidEntityError(f"order image {change.get('Keys')} cannot make an event: {exc!r}") from exc


class StreamBridge:
    """The DynamoDB stream handler's core. Build once per container; :meth:`handle` per invocation."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One invocation: the ``batchItemFailures`` response (empty when every event was delivered)."""
        records: Sequence[Mapping[str, Any]] = event.get("Records") or []
        pending: list[tuple[str, Event]] = []  # (sequence number, event), in stream order
        for record in records:
            sequence = str(record.get("dynamodb", {}).get("SequenceNumber", ""))
            try:
                wire = order_event_of(record)
                if wire is not None:
                    pending.append((sequence, parse_event(wire)))
            except (InvalidEntityError, EventValidationError):
                # A poison record: publish what precedes it, then let Lambda retry from it and, after the
                # mapping's retries, hand it to the on-failure destination.
                log.exception("stream record %s cannot become an order event", sequence)
                return self._publish(pending, failed_at=sequence)
        return self._publish(pending, failed_at=None)

    def _publish(self, pending: list[tuple[str, Event]], failed_at: str | None) -> dict[str, Any]:
        first_failure = failed_at
        if pending:
            try:
                self._publisher.put_many(event for _, event in pending)
                self._publisher.flush()
            except DeliveryError as exc:
                undelivered = {e.event_id for e in exc.undelivered}
                first_failure = next(seq for seq, e in pending if e.event_id in undelivered)
                log.warning("%d order events not delivered; retrying from %s", len(undelivered), first_failure)
        return {"batchItemFailures": [] if first_failure is None else [{"itemIdentifier": first_failure}]}
