"""The embedded emulator's lifecycle: nothing left running, reuse through the state file, stale records.

These tests start emulators of their own (about 1.5 s each with a warm uv cache), next to the session's.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.settings import Settings, aws_client
from tools.local.emulator import (
    STATE_FILE,
    EmbeddedEmulator,
    EmulatorError,
    EmulatorRecord,
    find_recorded,
    start_or_reuse,
    stop_recorded,
)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _health(port: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/_ministack/health")
        body: dict[str, Any] = json.loads(connection.getresponse().read())
        return body
    finally:
        connection.close()


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    probe = subprocess.Popen([sys.executable, "-c", "pass"])
    probe.wait()
    return probe.pid


def _silent_port() -> int:
    """A port nothing listens on (free when asked)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process in a session of its own that is not an emulator."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


@pytest.mark.emulator
def test_start_then_stop_leaves_no_process(tmp_path: Path) -> None:
    # GIVEN an emulator started in a fresh state dir
    emulator = EmbeddedEmulator(state_dir=tmp_path)
    with emulator:
        # THEN it answers on 127.0.0.1, with its extra listeners (IoT MQTT on 0.0.0.0:8883) switched off
        assert emulator.endpoint_url == f"http://127.0.0.1:{emulator.port}"
        assert emulator.is_running()
        assert _health(emulator.port)["iot_mtls"] == "disabled"
        kinesis = aws_client("kinesis", Settings(endpoint_url=emulator.endpoint_url))
        assert kinesis.list_streams()["StreamNames"] == []

    # WHEN it is stopped (leaving the with block)
    # THEN no process of its group is left, its scratch dir is gone and only its log remains
    assert not _group_alive(emulator.pid)
    assert not emulator.is_running()
    assert [path.name for path in tmp_path.iterdir()] == [emulator.log_path.name]
    assert "Ready" in emulator.log_path.read_text(encoding="utf-8")
    emulator.stop()  # idempotent


@pytest.mark.emulator
def test_start_timeout_stops_the_process_and_points_at_the_log(tmp_path: Path) -> None:
    # GIVEN a start timeout far too short for ministack to boot
    emulator = EmbeddedEmulator(state_dir=tmp_path, startup_timeout=0.05)

    # WHEN it is started
    # THEN the error says so and names the log file
    with pytest.raises(EmulatorError, match="did not answer") as raised:
        emulator.start()
    assert str(emulator.log_path) in str(raised.value)

    # AND nothing of it is left running
    assert not _group_alive(emulator.pid)


@pytest.mark.emulator
def test_start_or_reuse_replaces_a_stale_record_then_reuses_it(tmp_path: Path) -> None:
    # GIVEN a state file recording an emulator whose process is gone
    EmulatorRecord(pid=_dead_pid(), port=_silent_port(), endpoint_url="http://127.0.0.1:1", log_path="x").write(
        tmp_path / STATE_FILE
    )

    # WHEN start_or_reuse is called twice
    first = start_or_reuse(tmp_path)
    try:
        second = start_or_reuse(tmp_path)

        # THEN the first started a new emulator and recorded it; the second reused it
        assert not first.reused
        assert second.reused
        assert (second.pid, second.endpoint_url) == (first.pid, first.endpoint_url)
        record = EmulatorRecord.read(tmp_path / STATE_FILE)
        assert record is not None
        assert (record.pid, record.port, record.endpoint_url) == (first.pid, first.port, first.endpoint_url)
        assert record.log_path == str(first.log_path)

        # WHEN the recorded emulator is stopped
        stopped = stop_recorded(tmp_path)

        # THEN it is gone with its record, and there is nothing left to stop
        assert stopped
        assert not _group_alive(first.pid)
        assert not (tmp_path / STATE_FILE).exists()
        assert not stop_recorded(tmp_path)
    finally:
        first.stop()


@pytest.mark.parametrize(
    "alive",
    [
        pytest.param(False, id="process-gone"),
        pytest.param(True, id="process-alive-but-port-silent"),
    ],
)
def test_recorded_emulator_that_does_not_answer_is_absent(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], alive: bool
) -> None:
    # GIVEN a record whose process is gone, or alive but not answering on the recorded port
    pid = sleeper.pid if alive else _dead_pid()
    EmulatorRecord(pid=pid, port=_silent_port(), endpoint_url="http://127.0.0.1:1", log_path="x").write(
        tmp_path / STATE_FILE
    )

    # WHEN it is looked up and stopped
    found = find_recorded(tmp_path)
    stopped = stop_recorded(tmp_path)

    # THEN it is treated as absent: the record is removed and no process is signalled
    assert found is None
    assert not stopped
    assert not (tmp_path / STATE_FILE).exists()
    assert sleeper.poll() is None
