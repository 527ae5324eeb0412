"""``pipeline analytics``: usage, a clear one-line refusal without Java or PyFlink, the package action."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tools.cli.main import main


def test_without_java_the_run_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    # GIVEN a PATH with this Python and nothing else: no java (and no JAVA_HOME)
    environment = {k: v for k, v in os.environ.items() if k not in {"JAVA_HOME", "PATH"}}
    environment["PATH"] = str(Path(sys.executable).parent)
    # WHEN pipeline analytics run starts
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli.main", "analytics", "run", "--no-store", "--from-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )
    # THEN it stops before anything else, with one line naming what is missing and how to get it
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("pipeline analytics: ")
    assert "Java" in line or "PyFlink" in line
    assert done.stdout == ""


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["analytics", "--help"], id="analytics"),
        pytest.param(["analytics", "run", "--help"], id="run"),
        pytest.param(["analytics", "package", "--help"], id="package"),
    ],
)
def test_every_action_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage: pipeline analytics" in capsys.readouterr().out


def test_package_writes_the_zip_and_says_what_it_still_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN the zip is built without the connector jar
    status = main(["analytics", "package", "--output", str(tmp_path / "app.zip"), "--json"])
    captured = capsys.readouterr()
    # THEN it is written, and both the summary and stderr say it is not deployable yet, and why
    assert status == 0
    doc = orjson.loads(captured.out)
    assert doc["path"] == str(tmp_path / "app.zip")
    assert (tmp_path / "app.zip").stat().st_size == doc["size"]
    assert doc["deployable"] is False
    assert "pyflink-dependencies.jar" in doc["missing"][0]
    assert "not deployable yet" in captured.err
