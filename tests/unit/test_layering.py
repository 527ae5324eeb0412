"""What runs in Lambda imports nothing of the dev tools: the rule that keeps the package small.

Every import statement is read from the source (lazy imports inside functions included), so the
rule holds whatever code path runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = ("tools", "load", "tests", "analytics")
# package -> top-level packages it must never import
FORBIDDEN = {
    "pipeline": (*DEV_ONLY, "producers", "consumers"),
    "consumers": DEV_ONLY,
    "producers": (*DEV_ONLY, "consumers"),
}


def _imported(source: Path) -> set[str]:
    """Every module an import statement of ``source`` names (absolute imports)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_runtime_packages_import_no_dev_tool(package: str) -> None:
    # GIVEN every module of a package that ships in a Lambda function (or in a service embedding it)
    sources = sorted(ROOT.joinpath(package).rglob("*.py"))
    assert sources, f"no module in {package}/"
    # THEN none imports a package it must not
    wrong = [
        f"{source.relative_to(ROOT)} imports {name}"
        for source in sources
        for name in sorted(_imported(source))
        if name.split(".")[0] in FORBIDDEN[package]
    ]
    assert wrong == []


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    # GIVEN a module that imports a dev tool only inside a function
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tools.oracle import expected_tables\n    import load.common\n")
    # THEN both imports are seen
    assert _imported(module) == {"tools.oracle", "load.common"}
