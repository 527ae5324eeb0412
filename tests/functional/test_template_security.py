"""``template.yaml`` under checkov: no failed check, and every skipped one justified in the template.

checkov runs pinned (:data:`~tools.local.tools.CHECKOV_VERSION`, in a uv environment of its own, like
cfn-lint), reading the file only (``--skip-download``: nothing is fetched from a platform). A check that
does not apply is skipped in the template, next to the resource, with ``Metadata: checkov: skip:`` and a
comment saying why; this test refuses a skip without one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from tools.local.tools import CHECKOV_VERSION, checkov_command, offline_aws_env

ROOT = Path(__file__).resolve().parents[2]
_MIN_COMMENT = 40  # characters: a reason, not "n/a"


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    result = subprocess.run(
        checkov_command("--file", "template.yaml", "--output", "json", "--skip-download"),
        cwd=ROOT,
        env=offline_aws_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report: dict[str, Any] = orjson.loads(result.stdout)
    return report


def test_checkov_finds_no_failed_check(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in checkov_report["results"]["failed_checks"]]
    print(f"checkov {summary['checkov_version']}: {summary}")  # noqa: T201 - the gate's figures
    assert summary["checkov_version"] == CHECKOV_VERSION
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0
    assert failed == []


def test_every_skipped_check_says_why(checkov_report: dict[str, Any]) -> None:
    skipped = checkov_report["results"]["skipped_checks"]
    unexplained = [
        (c["check_id"], c["resource"])
        for c in skipped
        if len(c["check_result"].get("suppress_comment") or "") < _MIN_COMMENT
    ]
    assert unexplained == []
