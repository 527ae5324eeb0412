"""The project's :class:`~producers.Producer` as a Locust user: more load than one machine makes.

Run it headless, alone or as a master with workers on other machines (each worker runs the same
file; Locust spreads the users over them)::

    locust -f load/locust_producer.py --headless -u 50 -r 10 -t 5m --host $PIPELINE_ENDPOINT_URL --stream $STREAM_NAME
    locust -f load/locust_producer.py --headless --master --expect-workers 4 -u 200 -r 20 -t 10m ...
    locust -f load/locust_producer.py --worker --master-host MASTER ...      # on each worker machine

Each user owns one producer (its own Kinesis client; ``--host`` is the AWS endpoint, empty for real
AWS) and, once a second (``constant_throughput(1)``), sends ``--events-per-task`` fresh events of
the reference workload (:mod:`tools.generate`, dated now, new random ids so the consumer counts
every one) in ``--format`` records and flushes. So the offered load is users x events-per-task
events/s. Each flush is one Locust request named ``events`` (type ``PutRecords``): its time is the
flush's (retries included), its length the number of events delivered, and a flush that leaves
events undelivered is a failure carrying :class:`~pipeline.exceptions.DeliveryError`'s message.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from locust import User, constant_throughput, events, task
from locust.argument_parser import LocustArgumentParser

from pipeline.codecs import RecordFormat
from pipeline.exceptions import DeliveryError, PipelineError
from pipeline.settings import Settings, aws_client
from producers import Producer
from tools.generate import WorkloadSpec, generate_events

__all__ = ["ProducerUser"]

_SPEC = WorkloadSpec()
_rng = random.SystemRandom()


def _arguments(parser: LocustArgumentParser) -> None:
    parser.add_argument("--stream", env_var="STREAM_NAME", default="", help="the Kinesis stream (env STREAM_NAME)")
    parser.add_argument("--events-per-task", type=int, default=100, help="events each user sends a second (100)")
    parser.add_argument(
        "--record-format",
        choices=[f.value for f in RecordFormat],
        default=RecordFormat.GZIP_BATCH.value,
        help="record format (gzip-batch)",
    )


events.init_command_line_parser.add_listener(_arguments)  # type: ignore[no-untyped-call]  # locust is untyped here


class ProducerUser(User):
    """One service instance publishing events through the project's producer. See the module docstring."""

    wait_time = constant_throughput(1)

    def on_start(self) -> None:
        options: Any = self.environment.parsed_options
        if not options or not options.stream:
            raise PipelineError("no stream: pass --stream or set STREAM_NAME")
        settings = Settings.from_env()
        if self.host:
            settings = settings.with_(endpoint_url=self.host)
        kinesis = aws_client("kinesis", settings.with_(max_attempts=1))  # the producer owns retries
        self._per_task = max(1, int(options.events_per_task))
        self._producer = Producer(
            options.stream, kinesis, record_format=RecordFormat(options.record_format), linger_seconds=0
        )

    def on_stop(self) -> None:
        producer: Producer | None = getattr(self, "_producer", None)
        if producer is not None:
            producer.close()

    @task
    def publish(self) -> None:
        """Send one batch of fresh events and flush it: one Locust request."""
        now = datetime.now(UTC)
        spec = replace(_SPEC, start=now, duration=timedelta(seconds=1))
        batch = list(generate_events(self._per_task, _rng.getrandbits(63), spec))
        started = time.perf_counter()
        error: Exception | None = None
        delivered = len(batch)
        try:
            self._producer.put_many(batch)
            self._producer.flush()
        except DeliveryError as exc:  # some events refused or not delivered after retries; the rest went
            error = exc
            delivered -= len(exc.undelivered)
        self.environment.events.request.fire(
            request_type="PutRecords",
            name="events",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=delivered,
            exception=error,
            context={},
        )
