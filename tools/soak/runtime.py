"""The live runtime under faults: ``python -m tools.soak.runtime --state-dir D --stage S --fault-rate R``.

It is :class:`tools.local.live.LiveRuntime` (the consumer Lambda runs, driven with Lambda's event-source
semantics, plus the archive's delivery stream), in a process of its own, with faults at rate ``R``:

- every botocore client the process builds (the runtime's Kinesis, SQS and S3 clients, the consumer's
  DynamoDB, SQS and S3 clients, lazy ones included) gets :meth:`tools.faults.FaultInjector.chaos`:
  throttles on every HTTP attempt of every operation and partial failures of every batch call;
- each invocation of the handler crashes with probability ``R``: a third of them *before* the handler
  runs, a third *during* its flush (the 1st to 3rd ``BatchExecuteStatement`` of the invocation raises
  :class:`~tools.memory.SimulatedCrash` instead of being sent, so earlier statements are written and later
  ones are not), a third *after* it returned (everything written, the batch reported failed). A crash
  is a function error: the event source mapping retries the batch, as Lambda does;
- each successful batch is delivered once more with probability ``R`` (at-least-once delivery);
- retries of a failed batch are spaced by :func:`tools.local.runtime.retry_backoff` (0.5 s doubling to
  10 s): the template's ten retries then span about a minute, longer than the emulator's restart.
  Without it, a batch in flight when the emulator stops fails ten times in milliseconds and is
  discarded to the on-failure queue (the first 100k soak lost records that way). The archive's
  transform retries likewise wait :func:`firehose_backoff` (10, 20, 30 s): without it, gzip-batch
  records whose transform could not write during the restart went to the error prefix.

It also measures the lag of every record, from its arrival in the stream to the end of the successful
invocation that processed it. On SIGTERM or SIGINT it stops as the live runtime does (archive buffers
written), then writes ``--results`` (JSON: lag percentiles, crashes, redeliveries, faults). A crash
here is an exception in the handler, not a dead process: the container (and its in-memory dedup
cache) is kept, as Lambda keeps a Python container after an unhandled exception.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.exceptions import PipelineError
from tools.faults import FaultInjector
from tools.local.live import LiveRuntime, process_setup
from tools.local.runtime import retry_backoff
from tools.local.stack import describe
from tools.memory import SimulatedCrash
from tools.soak.figures import percentiles

__all__ = ["CrashingHandler", "firehose_backoff", "main"]

logger = logging.getLogger("tools.soak.runtime")

Handler = Any  # (event, context) -> response


def firehose_backoff(retry: int) -> float:
    """Seconds before the ``retry``-th retry of the archive's transform: 10, 20, 30 s, so Firehose's three
    retries span a minute, like the event source mapping's ten (:func:`~tools.local.runtime.retry_backoff`)."""
    return 10.0 * retry


class CrashingHandler:
    """Wraps the deployed handler: crashes before, during or after it, and measures per-record lag.

    Not thread-safe, like the runtime that calls it (one invocation at a time). :meth:`hook` must be
    registered on the consumer's DynamoDB clients (``before-call.dynamodb.BatchExecuteStatement``) for
    crashes *during* a flush; a writer's worker thread raising it is what the handler then sees.
    """

    def __init__(self, handler: Handler, rate: float, rng: random.Random, now: Any = time.time) -> None:
        self._handler = handler
        self._rate = rate
        self._rng = rng
        self._now = now
        self._lock = threading.Lock()
        self._armed = 0  # during a flush: crash at this BatchExecuteStatement of the invocation (0: off)
        self.crashes: Counter[str] = Counter()
        self.lags_ms: list[int] = []

    def hook(self, **_: Any) -> None:
        with self._lock:
            if self._armed == 0:
                return
            self._armed -= 1
            if self._armed > 0:
                return
            self.crashes["during"] += 1
        raise SimulatedCrash("crash during a flush (injected by tools.soak)")

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        draw = self._rng.random()
        mode = "" if draw >= self._rate else ("before", "during", "after")[int(3 * draw / self._rate) % 3]
        if mode == "before":
            self.crashes["before"] += 1
            raise SimulatedCrash("crash before the handler ran (injected by tools.soak)")
        with self._lock:
            self._armed = self._rng.randint(1, 3) if mode == "during" else 0
        try:
            response = self._handler(event, context)
        finally:
            with self._lock:
                self._armed = 0
        if mode == "after":
            self.crashes["after"] += 1
            raise SimulatedCrash("crash after the handler returned (injected by tools.soak)")
        self._measure(event.get("Records") or [], response)
        return response

    def _measure(self, records: list[dict[str, Any]], response: Any) -> None:
        failures = (response or {}).get("batchItemFailures") if isinstance(response, dict) else None
        failed = {str(f.get("itemIdentifier")) for f in failures or [] if isinstance(f, dict)}
        now = self._now()
        for record in records:
            kinesis = record.get("kinesis", {})
            if kinesis.get("sequenceNumber") in failed:
                break  # this one and every later one come again
            self.lags_ms.append(round((now - float(kinesis.get("approximateArrivalTimestamp", now))) * 1000))


def _install(
    runtime: LiveRuntime, rate: float, rng: random.Random, dynamodb_clients: list[BaseClient]
) -> CrashingHandler:
    """Crashes around the runtime's handler, duplicate deliveries, and retries spaced to outlast a restart."""
    crashing = CrashingHandler(runtime._handler, rate, rng)  # the runtime's own handler, wrapped
    for client in dynamodb_clients:  # built before the wrapper existed
        client.meta.events.register("before-call.dynamodb.BatchExecuteStatement", crashing.hook)
    runtime._handler = crashing
    runtime.source.redeliver = lambda: rng.random() < rate
    runtime.source.retry_delay = retry_backoff  # ride through the emulator's restart
    runtime.firehose.retry_delay = firehose_backoff
    return crashing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.soak.runtime", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--fault-rate", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--archive-interval", type=float, default=1.0)
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args(argv)
    settings, signals = process_setup(args.state_dir, args.stage)
    runtime: LiveRuntime | None = None
    injector = FaultInjector(seed=args.seed)
    crashing: CrashingHandler | None = None
    dynamodb_clients: list[BaseClient] = []

    def setup(client: BaseClient) -> None:
        injector.chaos(client, args.fault_rate)
        if client.meta.service_model.service_name == "dynamodb":
            dynamodb_clients.append(client)
            if crashing is not None:
                client.meta.events.register("before-call.dynamodb.BatchExecuteStatement", crashing.hook)

    code = 1
    try:
        info = describe(settings, args.stage)  # before the faults: the stack is read once, cleanly
        if info is None:
            logger.error("stack of stage %s does not exist", args.stage)
            return 1
        rng = random.Random(args.seed + 1)  # noqa: S311 - fault draws, not secrets
        with injector.on_every_client(setup):
            runtime = signals.runtime = LiveRuntime(settings, info, args.state_dir.absolute(), args.archive_interval)
            crashing = _install(runtime, args.fault_rate, rng, dynamodb_clients)
            runtime.write_status("running")
            code = runtime.run()
    except (PipelineError, BotoCoreError, ClientError) as exc:
        logger.error("cannot run the soak runtime: %s", exc)
    finally:
        results = {
            "exit": code,
            "lag_ms": percentiles(crashing.lags_ms if crashing else []),
            "crashes": dict(crashing.crashes) if crashing else {},
            "redeliveries": sum(stats.redeliveries for _, stats in runtime.source.shards().values()) if runtime else 0,
            "faults": injector.counts.as_dict(),
        }
        args.results.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
