"""Reaching a local ministack from outside: its loopback address, its readiness probe, a free port, and
the POSIX process-group calls that stop it and collect its exit status.

These are the OS-level steps :class:`~tools.local.emulator.EmbeddedEmulator` is made of. The probe and
the process-group calls never raise for a port that does not answer or a group that is gone: they
answer ``False`` or do nothing. POSIX only.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
from typing import Final

__all__ = ["HOST", "READY_PATH", "answers", "free_port", "group_alive", "reap", "signal_group"]

HOST: Final = "127.0.0.1"
READY_PATH: Final = "/_ministack/ready"  # 200 once the gateway serves and boot scripts have run


def free_port() -> int:
    """A port free on 127.0.0.1 right now (another process could take it before ministack binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def answers(port: int, timeout: float = 1.0) -> bool:
    """True if ``GET /_ministack/ready`` on ``port`` returns 200."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", READY_PATH)
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def group_alive(pgid: int) -> bool:
    """True if a process of ours is in group ``pgid`` (zombies included)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # the group exists but belongs to another user: not an emulator of ours
    return True


def signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def reap(process: subprocess.Popen[bytes] | None, pid: int) -> None:
    """Collect the exit status of the group leader if it is our child, so it does not linger as a zombie."""
    if process is not None:
        process.poll()
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
