"""Packaging the local stack, without an emulator: a deterministic code zip of the project's packages
only, and ``template.yaml`` rewritten by its structure, never by text."""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

import pytest

from pipeline.exceptions import ConfigurationError
from pipeline.settings import Settings
from tools.local.package import TemplateRewriteError, package_code, rewrite_template
from tools.local.stack import deploy

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


CODE_URI = "s3://artifacts/code/abc.zip"


def test_the_code_zip_is_deterministic_and_holds_only_the_packages(tmp_path: Path) -> None:
    # GIVEN a tree with the two packages, caches and a hidden file
    for name in ("pipeline/__init__.py", "pipeline/sql/w.sql", "consumers/handler.py", "producers/p.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"# {name}\n")
    (tmp_path / "pipeline/__pycache__").mkdir()
    (tmp_path / "pipeline/__pycache__/x.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "pipeline/.hidden").write_text("x")
    # WHEN packaged twice, with a file's timestamp changed in between
    first = package_code(tmp_path)
    os.utime(tmp_path / "consumers/handler.py", (1, 1))
    second = package_code(tmp_path)
    # THEN the bytes are equal, and only the packages' files are in, sorted
    assert first.data == second.data
    assert first.key == f"code/{first.sha256[:24]}.zip"
    with zipfile.ZipFile(io.BytesIO(first.data)) as archive:
        assert archive.namelist() == ["consumers/handler.py", "pipeline/__init__.py", "pipeline/sql/w.sql"]


def test_the_project_packages_and_nothing_else_are_zipped() -> None:
    package = package_code(ROOT)
    with zipfile.ZipFile(io.BytesIO(package.data)) as archive:
        names = archive.namelist()
    assert "consumers/kinesis_consumer.py" in names
    assert "pipeline/consumer/processor.py" in names
    assert all(n.split("/")[0] in {"pipeline", "consumers"} for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_rewriting_the_real_template_changes_only_code_uri_and_build_metadata() -> None:
    # GIVEN the repository's template WHEN rewritten
    original = TEMPLATE.read_text()
    rewritten = rewrite_template(original, CODE_URI)
    # THEN every CodeUri names the artifact, BuildMethod is gone, and every other line is untouched
    assert re.findall(r"^\s*CodeUri:\s*(.*)$", rewritten, re.MULTILINE) == [CODE_URI]
    assert "BuildMethod" not in rewritten
    kept = [line for line in original.splitlines() if "CodeUri:" not in line and "BuildMethod" not in line]
    # a resource's Metadata left empty goes too (its next line is not indented deeper); one that still
    # holds something (a checkov skip) stays
    indent = [len(line) - len(line.lstrip()) for line in kept]
    last = len(kept) - 1
    emptied = [
        i
        for i, line in enumerate(kept)
        if line.strip() == "Metadata:" and line.startswith("    ") and (i == last or indent[i + 1] <= indent[i])
    ]
    kept = [line for i, line in enumerate(kept) if i not in emptied]
    assert [line for line in rewritten.splitlines() if "CodeUri:" not in line] == kept


EDGE_TEMPLATE = """\
Description: >
  Resources:
    Fake:
      CodeUri: not-a-key
Globals:
  Function:
    CodeUri: src/
Resources:
  Fn:
    Properties:
      CodeUri: "./src"   # trailing comment
      Description: |
        CodeUri: inside a literal block
    Metadata:
      BuildMethod: makefile
      BuildProperties:
        UseNpmCi: true

      Other: kept
    Type: AWS::Serverless::Function
  NotAFunction:
    Type: AWS::Lambda::Function
    Properties:
      CodeUri: untouched
"""


def test_rewrite_follows_structure_not_text() -> None:
    # GIVEN keys in any order, block scalars that look like keys, Globals and other Metadata
    rewritten = rewrite_template(EDGE_TEMPLATE.replace("\n", "\r\n"), CODE_URI)
    lines = rewritten.split("\r\n")
    # THEN only the function's and the global CodeUri change; build hints go, other Metadata stays
    assert f"      CodeUri: {CODE_URI}" in lines
    assert f"    CodeUri: {CODE_URI}" in lines
    assert "      CodeUri: not-a-key" in lines
    assert "        CodeUri: inside a literal block" in lines
    assert "      CodeUri: untouched" in lines
    assert "    Metadata:" in lines
    assert "      Other: kept" in lines
    assert not [line for line in lines if "Build" in line or "UseNpmCi" in line]
    assert rewritten.count("\r\n") == EDGE_TEMPLATE.count("\n") - 3


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        pytest.param(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
            "    Properties:\n      CodeUri:\n        Bucket: b\n",
            "mapping",
            id="code-uri-mapping",
        ),
        pytest.param(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: a.b\n",
            "no CodeUri",
            id="no-code-uri",
        ),
    ],
)
def test_rewrite_refuses_what_it_does_not_understand(template: str, reason: str) -> None:
    with pytest.raises(TemplateRewriteError, match=reason):
        rewrite_template(template, CODE_URI)


def test_a_stage_outside_the_template_pattern_is_refused_before_any_call() -> None:
    with pytest.raises(ConfigurationError, match="1 to 16"):
        deploy(Settings(endpoint_url="http://127.0.0.1:9"), stage="Bad_Stage")
