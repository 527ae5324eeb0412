"""``pipeline up | status | down`` as users run them: subprocesses of the installed ``pipeline``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
BIN = Path(sys.executable).parent


def _pipeline(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(BIN / "pipeline"), *args], capture_output=True, text=True, timeout=300, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"pipeline {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.emulator
def test_up_status_down_from_the_command_line(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    common = ["--state-dir", state, "--stage", "cli"]
    pid = None
    try:
        # WHEN 'pipeline up' runs THEN it prints exports a shell can eval and writes the stack file
        up = _pipeline("up", *common, "--template", str(TEMPLATE))
        exports = dict(
            shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in up.stdout.splitlines() if line
        )
        assert exports["STREAM_NAME"] == "event-pipeline-cli-events"
        assert exports["ORDER_METRICS_TABLE"] == "event-pipeline-cli-order-metrics"
        assert exports["BAD_ROWS_PREFIX"] == "bad-rows/"
        assert "created" in up.stderr
        document: dict[str, Any] = orjson.loads((tmp_path / "state" / "stack-cli.json").read_bytes())
        assert document["endpoint_url"] == exports["PIPELINE_ENDPOINT_URL"]
        assert document["event_source"]["batch_size"] == 1000
        pid = orjson.loads((tmp_path / "state" / "emulator.json").read_bytes())["pid"]
        # WHEN 'pipeline up' runs again THEN the emulator is reused and the stack unchanged
        again = _pipeline("up", *common, "--template", str(TEMPLATE), "--json")
        assert orjson.loads(again.stdout)["change"] == "unchanged"
        assert "reused" in again.stderr
        # WHEN 'pipeline status --json' runs THEN it shows the emulator, the stack and empty stores
        status = orjson.loads(_pipeline("status", *common, "--json").stdout)
        assert status["emulator"]["pid"] == pid
        assert status["stack"]["status"] == "CREATE_COMPLETE"
        assert all(shard["records"] == 0 for shard in status["stream"]["shards"])
        assert set(status["tables"].values()) == {0}
        assert "event-pipeline-cli-order-metrics" in _pipeline("status", *common).stdout
        # WHEN 'pipeline down' runs THEN the stack and the emulator are gone
        down = _pipeline("down", *common)
        assert "deleted" in down.stderr
        assert not _group_alive(pid)
        assert not (tmp_path / "state" / "stack-cli.json").exists()
        # THEN status says what to do, and down again is harmless
        after = _pipeline("status", *common, check=False)
        assert after.returncode == 1
        assert "run 'pipeline up'" in after.stderr
        assert _pipeline("down", *common).returncode == 0
    finally:
        if pid is not None and _group_alive(pid):
            _pipeline("down", *common, check=False)


def test_status_without_an_emulator_says_to_run_up(tmp_path: Path) -> None:
    result = _pipeline("status", "--state-dir", str(tmp_path), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == f"pipeline status: no emulator running in {tmp_path}: run 'pipeline up'"


def test_the_commands_explain_themselves() -> None:
    for command in ("up", "down", "status"):
        text = _pipeline(command, "--help").stdout
        assert "--stage" in text
        assert "--state-dir" in text
    assert "eval" in _pipeline("up", "--help").stdout
