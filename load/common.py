"""What every benchmark shares: goals (one figure against one limit), option parsing, progress notes."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.settings import Settings
from tools.local.emulator import MINISTACK_VERSION, EmbeddedEmulator

__all__ = ["Target", "add_output_options", "emulator_settings", "noter", "positive_int"]


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def noter(benchmark: str) -> Callable[[str], None]:
    """Progress notes on stderr, prefixed with the command, so stdout stays the result."""

    def note(message: str) -> None:
        print(f"pipeline bench {benchmark}: {message}", file=sys.stderr, flush=True)

    return note


def add_output_options(parser: argparse.ArgumentParser, epilog: str) -> None:
    """``--json`` and the help epilog that explains every figure."""
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = epilog


@dataclass(frozen=True, slots=True)
class Target:
    """A speed, cost or capacity goal; ``at_most`` says which side of ``limit`` passes."""

    label: str
    measured: float
    limit: float
    at_most: bool

    @property
    def passed(self) -> bool:
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit


@contextmanager
def emulator_settings(
    endpoint_url: str | None, note: Callable[[str], None], prefix: str
) -> Iterator[tuple[Settings, Path, int | None]]:
    """Settings for ``endpoint_url``, else for an emulator started here and stopped after; a temporary
    directory (removed after); and the started emulator's process group (``None`` for one given by URL)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as state:
        state_dir = Path(state)
        if endpoint_url:
            yield Settings(endpoint_url=endpoint_url), state_dir, None
            return
        note(f"starting ministack {MINISTACK_VERSION} in {state_dir}")
        with EmbeddedEmulator(state_dir=state_dir) as emulator:
            yield Settings(endpoint_url=emulator.endpoint_url), state_dir, emulator.pid
