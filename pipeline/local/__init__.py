"""The local runtime: the embedded AWS emulator the whole pipeline runs against on a laptop."""

from __future__ import annotations

from pipeline.local.emulator import (
    MINISTACK_VERSION,
    STATE_FILE,
    EmbeddedEmulator,
    EmulatorError,
    EmulatorRecord,
    find_recorded,
    start_or_reuse,
    stop_recorded,
)

__all__ = [
    "MINISTACK_VERSION",
    "STATE_FILE",
    "EmbeddedEmulator",
    "EmulatorError",
    "EmulatorRecord",
    "find_recorded",
    "start_or_reuse",
    "stop_recorded",
]
