"""The zip Amazon Managed Service for Apache Flink runs for the analytics job (a PyFlink application).

Layout, as the service and the AWS PyFlink examples expect (``kinesis.analytics.flink.run.options``:
``python = main.py``, ``jarfile = lib/pyflink-dependencies.jar``, ``pyFiles = dep/``)::

    main.py                        analytics/deploy/main.py: puts dep/ on the path, calls analytics.managed.main
    lib/pyflink-dependencies.jar   the connectors, one shaded jar (built from analytics/deploy/pom.xml)
    dep/analytics/...              the job: Python modules and sql/*.sql
    dep/pipeline/...               the project's core (codecs, event model) the decoding function uses
    dep/orjson/..., dep/aws_kinesis_agg/...   third-party Python packages, Linux x86_64, CPython 3.12

PyFlink itself and protobuf are the runtime's (never shipped: a second copy would shadow them).

Guarantees of :func:`build_package`:

- The zip is deterministic: entries sorted, fixed timestamps and modes, so the same tree gives the same
  bytes (and the same S3 key when named by its hash).
- Third-party packages are wheels for the service's platform, at the versions installed here (the
  project's lock), fetched from PyPI by ``uv`` (needs network the first time; uv caches them).
- The connector jar cannot be fetched here (Maven Central is not reachable): without ``jar`` the zip is
  written without it and :attr:`Package.deployable` is ``False``; ``missing`` says what to add.
- Nothing of the tests, caches or the deploy recipe goes in; ``pyflink`` never does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Final

from pipeline.exceptions import ConfigurationError

__all__ = [
    "JAR_PATH",
    "PLATFORM",
    "PYTHON_DEPENDENCIES",
    "PYTHON_VERSION",
    "RUN_OPTIONS",
    "Package",
    "build_package",
]

ROOT: Final = Path(__file__).resolve().parents[1]
JAR_PATH: Final = "lib/pyflink-dependencies.jar"
RUN_OPTIONS: Final = {"python": "main.py", "jarfile": JAR_PATH, "pyFiles": "dep/"}
"""The ``kinesis.analytics.flink.run.options`` property group the application needs (template.yaml)."""
PYTHON_DEPENDENCIES: Final = ("orjson", "aws-kinesis-agg")
"""The project's runtime packages the decoding function imports; boto3 is not needed in the job."""
PLATFORM: Final = "x86_64-manylinux2014"
PYTHON_VERSION: Final = "3.12"
_CODE: Final = ("analytics", "pipeline")
_SKIPPED_DIRS: Final = frozenset({"__pycache__", "deploy"})
_STAMP: Final = (2026, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Package:
    """What :func:`build_package` wrote."""

    path: Path
    sha256: str
    size: int
    entries: tuple[str, ...]
    dependencies: dict[str, str] = field(default_factory=dict)
    """Third-party packages shipped under ``dep/``, by name: version."""
    missing: tuple[str, ...] = ()
    """What the zip still needs before the service can run it (the connector jar)."""

    @property
    def deployable(self) -> bool:
        return not self.missing


def _uv() -> str:
    uv = os.environ.get("PIPELINE_UV") or shutil.which("uv")
    if not uv:
        raise ConfigurationError("uv is needed to fetch the Linux wheels of the job's Python dependencies")
    return uv


def _fetch(target: Path) -> dict[str, str]:
    """Install :data:`PYTHON_DEPENDENCIES` for the service's platform into ``target``; their versions."""
    versions = {name: metadata.version(name) for name in PYTHON_DEPENDENCIES}
    command = [
        _uv(),
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--python-platform",
        PLATFORM,
        "--python-version",
        PYTHON_VERSION,
        "--target",
        str(target),
        *(f"{name}=={version}" for name, version in versions.items()),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    if done.returncode != 0:
        raise ConfigurationError(f"fetching {', '.join(versions)} for {PLATFORM} failed: {done.stderr.strip()[-500:]}")
    return versions


def _files(base: Path, under: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(under.rglob("*")):
        relative = path.relative_to(base)
        if path.is_file() and not set(relative.parts) & _SKIPPED_DIRS and path.suffix != ".pyc":
            yield relative.as_posix(), path


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_STAMP)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_package(output: Path, *, jar: Path | None = None) -> Package:
    """Write the application zip to ``output`` (see the module docstring)."""
    if jar is not None and not jar.is_file():
        raise ConfigurationError(f"connector jar not found: {jar}")
    entries: dict[str, bytes] = {"main.py": (ROOT / "analytics" / "deploy" / "main.py").read_bytes()}
    for package in _CODE:
        for name, path in _files(ROOT, ROOT / package):
            entries[f"dep/{name}"] = path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="analytics-dep-") as scratch:
        versions = _fetch(Path(scratch))
        for name, path in _files(Path(scratch), Path(scratch)):
            if not name.startswith(("bin/", ".")):  # uv's lock file, console scripts
                entries[f"dep/{name}"] = path.read_bytes()
    missing: tuple[str, ...] = ()
    if jar is not None:
        entries[JAR_PATH] = jar.read_bytes()
    else:
        missing = (f"{JAR_PATH}: build it from analytics/deploy/pom.xml (mvn package) and pass --jar",)
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w") as archive:
        for name in sorted(entries):
            _add(archive, name, entries[name])
    data = output.read_bytes()
    return Package(output, hashlib.sha256(data).hexdigest(), len(data), tuple(sorted(entries)), versions, missing)
