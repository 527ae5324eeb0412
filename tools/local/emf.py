"""CloudWatch's embedded metric format (EMF), locally: what Lambda's log pipeline does with the
consumer's Powertools metrics, so that ``GetMetricData`` on the emulator sees them as it would in AWS.

In AWS, a Lambda function prints EMF documents (JSON lines with an ``_aws`` member) to stdout and
CloudWatch Logs turns each into metric data. The live runtime runs the handler in-process, so its
stdout goes to a log file; :class:`EmfForwarder` sits in that stream: every line is passed on
unchanged, and every EMF document in it becomes metric data, sent to CloudWatch with
``PutMetricData`` when :meth:`EmfForwarder.send` is called (the runtime calls it once per polling
round, never per event).

Guarantees:
- The log is written exactly as it would be without the forwarder (lines are passed through whole).
- Each metric value of each EMF document is sent once, with the document's timestamp, unit and
  dimension values (every dimension set the document declares); at most 1,000 data per call, the
  API's limit. Lines that are not EMF documents, or are malformed, are only logged (never raise).
- A failed ``PutMetricData`` keeps the data for the next send, up to ``max_pending`` data (the oldest
  are dropped first, and counted in :attr:`EmfForwarder.dropped`): metrics must never stop the consumer.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import orjson
from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["EmfForwarder", "metric_data"]

_PUT_LIMIT: Final = 1000  # PutMetricData: at most 1,000 metric data per call


def metric_data(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The ``(namespace, MetricDatum)`` pairs of one EMF document; nothing for a document without an
    ``_aws.CloudWatchMetrics`` directive. Raises ``KeyError``/``TypeError``/``ValueError`` on a
    malformed one (the caller decides what to do with it)."""
    meta = document["_aws"]
    when = datetime.fromtimestamp(int(meta["Timestamp"]) / 1000, tz=UTC)
    for directive in meta.get("CloudWatchMetrics", ()):
        namespace = str(directive["Namespace"])
        dimension_sets = directive.get("Dimensions") or [[]]
        for metric in directive.get("Metrics", ()):
            name = str(metric["Name"])
            values = document.get(name)
            if values is None:
                continue
            values = values if isinstance(values, list) else [values]
            for names in dimension_sets:
                dims = [{"Name": str(d), "Value": str(document[d])} for d in names]
                for value in values:
                    datum: dict[str, Any] = {
                        "MetricName": name,
                        "Dimensions": dims,
                        "Timestamp": when,
                        "Value": float(value),
                        "Unit": str(metric.get("Unit", "None")),
                    }
                    yield namespace, datum


class EmfForwarder(io.TextIOBase):
    """A text stream that passes every line to ``out`` and turns EMF lines into CloudWatch metric data.

    ``cloudwatch`` is a low-level boto3 client (the emulator's, in the live runtime).
    """

    def __init__(self, out: TextIO, cloudwatch: Any, *, max_pending: int = 100_000) -> None:
        super().__init__()
        self._out = out
        self._cloudwatch = cloudwatch
        self._partial = ""
        self._pending: deque[tuple[str, dict[str, Any]]] = deque(maxlen=max_pending)
        self.sent = 0
        self.dropped = 0
        self.malformed = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._out.write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        self._collect(lines)
        return len(text)

    def pending(self) -> int:
        """Metric data collected and not yet sent."""
        return len(self._pending)

    def _collect(self, lines: Iterable[str]) -> None:
        for line in lines:
            if '"_aws"' not in line:
                continue
            try:
                document = orjson.loads(line)
                data = list(metric_data(document))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                self.malformed += 1
                continue
            if len(self._pending) + len(data) > (self._pending.maxlen or 0):
                self.dropped += len(self._pending) + len(data) - (self._pending.maxlen or 0)
            self._pending.extend(data)

    def flush(self) -> None:
        """Flush the output stream only (``print(..., flush=True)`` must not make an AWS call)."""
        self._out.flush()

    def send(self) -> None:
        """Send what was collected: one ``PutMetricData`` per namespace and 1,000 data. On an AWS error
        the unsent data stay for the next call."""
        while self._pending:
            namespace = self._pending[0][0]
            batch: list[dict[str, Any]] = []
            while self._pending and self._pending[0][0] == namespace and len(batch) < _PUT_LIMIT:
                batch.append(self._pending.popleft()[1])
            try:
                self._cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch)
            except (BotoCoreError, ClientError):
                self._pending.extendleft((namespace, datum) for datum in reversed(batch))
                return
            self.sent += len(batch)
