"""Where a user's local stack keeps its state: one directory per user, whatever the current directory.

``--state-dir`` wins, then ``PIPELINE_STATE_DIR``, then ``$XDG_STATE_HOME/event-pipeline``, then
``~/.local/state/event-pipeline``. The directory holds the emulator's record and log, each stage's
stack file, and the live runtime's record, status file and logs; ``pipeline up``, ``status``, ``down``
and ``load`` all find the same stack from anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

__all__ = ["STATE_DIR_VARIABLE", "default_state_dir", "stack_file"]

STATE_DIR_VARIABLE: Final = "PIPELINE_STATE_DIR"


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user state directory (absolute); see the module docstring. Nothing is created here."""
    env = os.environ if environ is None else environ
    explicit = env.get(STATE_DIR_VARIABLE)
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = env.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return (base / "event-pipeline").absolute()


def stack_file(state_dir: Path, stage: str) -> Path:
    """The JSON ``pipeline up`` writes for ``stage``: endpoint, outputs, environment, event source."""
    return state_dir / f"stack-{stage}.json"
