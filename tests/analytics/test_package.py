"""The zip for Managed Service for Apache Flink: its layout, its determinism, and that its code runs on its own."""

from __future__ import annotations

import importlib.util
import platform
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from analytics.package import JAR_PATH, PYTHON_DEPENDENCIES, build_package


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zip without the connector jar (Maven is not reachable here)."""
    return build_package(tmp_path_factory.mktemp("zip") / "app.zip").path


def test_the_zip_has_the_layout_the_service_runs(built: Path) -> None:
    names = zipfile.ZipFile(built).namelist()
    # THEN main.py at the root, the job and the project's core under dep/, with the SQL files
    assert "main.py" in names
    for required in ("dep/analytics/managed.py", "dep/analytics/sql/orders_1h.sql", "dep/pipeline/codecs/decode.py"):
        assert required in names, required
    # AND the third-party packages for Linux x86_64, CPython 3.12, never PyFlink, tests, caches or the recipe
    assert any(n.startswith("dep/orjson/orjson.cpython-312-x86_64-linux-gnu") for n in names)
    assert any(n.startswith("dep/aws_kinesis_agg/") for n in names)
    assert len(PYTHON_DEPENDENCIES) == 2
    forbidden = ("pyflink", "tests/", "__pycache__", ".pyc", "deploy/", "google/protobuf")
    assert not [n for n in names if any(part in n for part in forbidden)]


def test_without_the_connector_jar_the_zip_says_it_is_not_deployable(tmp_path: Path) -> None:
    package = build_package(tmp_path / "a.zip")
    assert not package.deployable
    assert JAR_PATH in package.missing[0]
    assert JAR_PATH not in zipfile.ZipFile(package.path).namelist()


def test_with_a_jar_the_zip_carries_it_and_the_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    jar = tmp_path / "deps.jar"
    jar.write_bytes(b"PK\x03\x04 not a real jar")
    first = build_package(tmp_path / "1.zip", jar=jar)
    second = build_package(tmp_path / "2.zip", jar=jar)
    assert first.deployable
    assert zipfile.ZipFile(first.path).read(JAR_PATH) == jar.read_bytes()
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()


_DECODE_IN_ISOLATION = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from analytics.decoding import decoded_rows
from analytics.managed import ManagedSettings
import orjson
assert orjson.__file__.startswith(sys.argv[1]), orjson.__file__
print(sum(1 for _ in decoded_rows(bytes.fromhex(sys.argv[3]))))
"""


@pytest.mark.skipif(
    (sys.version_info[:2], platform.machine(), sys.platform) != ((3, 12), "x86_64", "linux"),
    reason="the zip's native packages are for CPython 3.12 on Linux x86_64 (Managed Flink 2.2)",
)
def test_the_zips_code_decodes_records_with_nothing_but_the_zip_and_the_runtimes_protobuf(
    built: Path, tmp_path: Path
) -> None:
    # GIVEN the zip unpacked, and a KPL record of two events (protobuf, orjson, the codec layer, the rows)
    zipfile.ZipFile(built).extractall(tmp_path)
    from pipeline.codecs import RecordFormat
    from tests.analytics.records import encoded
    from tools.generate import generate_events

    (record,) = encoded(list(generate_events(2, seed=1)), RecordFormat.KPL)
    spec = importlib.util.find_spec("google.protobuf")
    assert spec is not None and spec.origin is not None
    protobuf_root = str(Path(spec.origin).parents[2])
    # WHEN a Python without site-packages imports the job from dep/ (protobuf is the Flink runtime's)
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _DECODE_IN_ISOLATION, str(tmp_path / "dep"), protobuf_root, record.hex()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # THEN it decodes the record into its two rows
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"
