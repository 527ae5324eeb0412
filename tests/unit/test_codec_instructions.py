"""The instruction-count harness of the codec benchmark, without valgrind: its workload and its loops."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from load.codec_bench.instructions import LOOPS, _loop, _Workload, _write_workload, main


def test_the_workload_holds_every_event_in_each_form(tmp_path: Path) -> None:
    # GIVEN a workload of 30 reference events written for the callgrind children
    path = tmp_path / "workload.msgpack"
    _write_workload(30, 1, path)
    # WHEN read back THEN it has each event's wire bytes, one json record per event and a KPL aggregate
    workload = msgspec.msgpack.decode(path.read_bytes(), type=_Workload)
    assert len(workload.wires) == len(workload.json) == 30
    assert [record[2] for record in workload.json] == workload.wires
    assert len(workload.kpl) == 1


@pytest.mark.parametrize("name", LOOPS)
def test_every_loop_runs_over_the_workload(tmp_path: Path, name: str) -> None:
    # GIVEN a small workload WHEN a loop runs over it THEN it returns without error (a decode error is a value)
    path = tmp_path / "workload.msgpack"
    _write_workload(12, 2, path)
    loop = _loop(name, msgspec.msgpack.decode(path.read_bytes(), type=_Workload))
    assert loop() is None


def test_an_unknown_loop_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a loop name that does not exist WHEN the harness starts THEN it exits 2 with one line, before valgrind
    assert main(["nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown loop nope" in err
