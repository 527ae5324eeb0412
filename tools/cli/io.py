"""Small I/O helpers shared by the commands: input files, NDJSON events, progress on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NoReturn

from pipeline.events import Event, decode_event
from pipeline.exceptions import EventValidationError

__all__ = ["Progress", "fail", "open_input", "read_events"]


def fail(message: str) -> NoReturn:
    """Stop the command with ``message`` on stderr and exit status 2 (bad usage or input shape)."""
    print(f"pipeline: {message}", file=sys.stderr)
    raise SystemExit(2)


@contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """``-`` is standard input; anything else a path to read: a file, a pipe (``<(...)``, a FIFO) or a
    device such as ``/dev/stdin``. A missing or unreadable path is a one-line error naming it."""
    if path == "-":
        yield sys.stdin.buffer
        return
    file = Path(path)
    if file.is_dir():
        fail(f"input is a directory, not a file: {path}")
    try:
        handle = file.open("rb")
    except FileNotFoundError:
        fail(f"input file not found: {path}")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    with handle:
        yield handle


def read_events(stream: BinaryIO, errors: list[str]) -> Iterator[Event]:
    """Valid events from NDJSON; each bad line appends ``line N: reason`` to ``errors`` and is skipped."""
    for number, line in enumerate(stream, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            yield decode_event(text)
        except EventValidationError as exc:
            json_error = exc.field == "$" and exc.reason.startswith("invalid JSON")
            errors.append(f"line {number}: {exc.reason if json_error else f'invalid event: {exc}'}")


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal (or ``force``).

    At most ten redraws a second, so it costs nothing on hot loops.
    """

    def __init__(self, label: str, total: int | None = None, *, force: bool = False, unit: str = "events") -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.enabled = force or sys.stderr.isatty()
        self._start = time.monotonic()
        self._drawn = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._drawn >= 0.1:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            eta = (self.total - self.done) / rate if rate else 0.0
            text = f"{self.label} [{bar:<30}] {self.done}/{self.total} {self.unit} {rate:,.0f}/s eta {eta:.0f}s"
        else:
            text = f"{self.label} {self.done} {self.unit} {rate:,.0f}/s"
        sys.stderr.write("\r" + text[:150])
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            sys.stderr.write("\n")
            sys.stderr.flush()
