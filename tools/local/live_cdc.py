"""Change data capture in the live local stack: what the bridge and relay functions do in AWS, run by the
live runtime on every round while ``pipeline up`` runs.

- the store table's stream -> :class:`~pipeline.stores.cdc.StreamBridge`, driven by
  :class:`~tools.local.stream_poller.DynamoDBStreamPoller` with Lambda's checkpoint semantics (the
  emulator's own mapping is deleted at deploy: it does not re-deliver after a partial failure);
- the local PostgreSQL's outbox -> :class:`~pipeline.stores.sql.outbox.OutboxRelay`, in the runtime of
  the stage whose ``up`` started that server (one relay per database, as the template runs one).

Each :meth:`LiveCdc.pump` (at most every :data:`PUMP_EVERY_S`) reads one batch per shard of the table's
stream and one outbox batch. A
failure (the emulator or the database unreachable, a publish refused) is logged and retried on the
next round; it never stops the runtime. Replays after a restart (the poller starts from
``TRIM_HORIZON``; an outbox row published but not marked) carry the same event ids, which the consumer
drops within its dedup window. Not thread-safe: the runtime's loop calls it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.exceptions import DeliveryError
from pipeline.settings import Settings, aws_client
from pipeline.stores.cdc import StreamBridge
from pipeline.stores.errors import StoreError
from pipeline.stores.sql.outbox import OutboxRelay
from pipeline.stores.sql.postgres import PostgresBackend
from producers import Producer
from tools.local import postgres_service
from tools.local.stack import StackInfo
from tools.local.stream_poller import DynamoDBStreamPoller

__all__ = ["PUMP_EVERY_S", "LiveCdc"]

logger = logging.getLogger(__name__)

PUMP_EVERY_S: Final = 0.5
"""The runtime's loop turns every ~50 ms when idle; CDC polls at most this often (Lambda polls a table's
stream about four times a second)."""


class LiveCdc:
    """Both CDC paths of one deployed stage; see the module docstring. Call :meth:`close` at the end."""

    def __init__(self, settings: Settings, info: StackInfo, state_dir: Path) -> None:
        stream = info.outputs["StreamName"]
        kinesis = aws_client("kinesis", settings.with_(max_attempts=1))  # the producers own retries
        self._producers: list[Producer] = []
        self.poller: DynamoDBStreamPoller | None = None
        self.relay: OutboxRelay | None = None
        self._backend: PostgresBackend | None = None
        self.published = 0
        self._last_pump = 0.0
        arn = info.outputs.get("StoreTableStreamArn")
        if arn:
            producer = self._producer(stream, kinesis)
            bridge = StreamBridge(producer)
            self.poller = DynamoDBStreamPoller(aws_client("dynamodbstreams", settings), arn, bridge.handle)
        record = postgres_service.find_recorded(state_dir)
        stage = info.stack_name.removeprefix("event-pipeline-")
        if record is not None and record.stage == stage:
            self._backend = PostgresBackend(record.conninfo, max_connections=2)
            self.relay = OutboxRelay(self._backend, self._producer(stream, kinesis))

    def _producer(self, stream: str, kinesis: Any) -> Producer:
        producer = Producer(stream, kinesis, linger_seconds=0)
        self._producers.append(producer)
        return producer

    def pump(self) -> None:
        """One round of each path, unless one ran less than :data:`PUMP_EVERY_S` ago; failures are logged
        and left to the next round."""
        if time.monotonic() - self._last_pump < PUMP_EVERY_S:
            return
        self._last_pump = time.monotonic()
        try:
            if self.poller is not None:
                self.poller.poll_once()
        except (BotoCoreError, ClientError) as exc:
            logger.warning("store table stream not read, retried next round: %s", exc)
        try:
            if self.relay is not None:
                self.published += self.relay.drain_once()
        except (StoreError, DeliveryError) as exc:
            logger.warning("outbox not relayed, retried next round: %s", exc)

    def close(self) -> None:
        for producer in self._producers:
            producer.close()
        if self._backend is not None:
            self._backend.close()
