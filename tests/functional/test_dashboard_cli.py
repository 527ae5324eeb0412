"""``pipeline metrics`` and ``pipeline dashboard`` refuse what they cannot do in one line, exit 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live_stack import ROOT


def _pipeline(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_TABLE")}
    env.update({"PYTHONPATH": str(ROOT), "PIPELINE_STATE_DIR": str(tmp_path / "state")})
    command = [sys.executable, "-m", "tools.cli.main", *args]
    return subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("metrics", "--day", "2026-13-01"), b"is not a day such as", id="bad-day"),
        pytest.param(("metrics",), b"no live stack in", id="no-stack"),
        pytest.param(("metrics", "top", "--limit", "0"), b"--limit: must be at least 1", id="zero-limit"),
        pytest.param(("dashboard", "--refresh", "0"), b"at least 0.2 seconds", id="refresh-too-fast"),
        pytest.param(("dashboard",), b"no live stack in", id="dashboard-no-stack"),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], message: bytes) -> None:
    result = _pipeline(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and b"Traceback" not in result.stderr


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    # GIVEN a stack file naming tables (nothing is read before the port is taken) and a port in use
    state = tmp_path / "state"
    state.mkdir()
    outputs = {"OrderMetricsTable": "o", "ProductMetricsTable": "p", "WindowMetricsTable": "w"}
    document = {"endpoint_url": "http://127.0.0.1:9", "outputs": outputs}
    (state / "stack-local.json").write_text(json.dumps(document))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = _pipeline(tmp_path, "dashboard", "--port", str(busy.getsockname()[1]))
    assert result.returncode == 2 and b"cannot listen on 127.0.0.1:" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
