"""The one place PyFlink is touched: availability, the table environment, typed wrappers, job runs.

PyFlink has no type stubs; everything it returns is ``Any`` here and stays inside this module and
:mod:`analytics.job` / :mod:`analytics.decoding`, behind functions with typed signatures.

Guarantees:

- :func:`unavailable_reason` says, in one line, why Flink cannot run here (no PyFlink, no Java, Java
  older than 17), or returns ``None``. It starts no JVM.
- :func:`table_environment` builds a streaming ``StreamTableEnvironment`` whose results are
  deterministic for a given input order when ``deterministic`` is set: parallelism 1 and a watermark
  emitted after every event (``pipeline.auto-watermark-interval`` 0: Flink's watermark assigner then
  emits whenever the watermark advances, instead of on a processing-time timer), so which events are
  late depends on the input alone. Session time zone UTC (window bounds are UTC).
- :func:`run` waits for the job and raises :class:`~analytics.errors.JobFailedError` with Flink's root
  cause when it fails; nothing is retried (local runs have no restart strategy).
- The first environment of a process starts PyFlink's JVM (a gateway, seconds); later ones reuse it.
"""

from __future__ import annotations

import atexit
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Final

from analytics.errors import FlinkUnavailableError, JobFailedError

__all__ = [
    "JAVA_MAJOR",
    "data_type",
    "execute_all",
    "release",
    "require_flink",
    "run",
    "table_environment",
    "unavailable_reason",
]

JAVA_MAJOR: Final = 17
"""PyFlink 2.x runs on Java 17 (Managed Flink 2.2 too); Debian: ``apt-get install openjdk-17-jre-headless``."""

_VERSION: Final = re.compile(r'version "(\d+)(?:\.(\d+))?')
_DECIMAL: Final = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def _java_major() -> int | None:
    java = shutil.which("java")
    if java is None:
        return None
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(done.stderr + done.stdout)
    if match is None:
        return None
    major = int(match[1])
    return int(match[2] or 0) if major == 1 else major  # "1.8.0" is Java 8


def unavailable_reason() -> str | None:
    """Why Flink cannot run on this machine (one line), or ``None`` when it can."""
    try:
        import pyflink  # noqa: F401
    except ImportError:
        return (
            "PyFlink is not installed: use Python 3.12 and install the 'analytics' dependency group "
            "(uv sync --group analytics, or pip install apache-flink==2.2.1)"
        )
    major = _java_major()
    if major is None:
        return f"no Java runtime found: Flink needs Java {JAVA_MAJOR} (Debian: apt-get install openjdk-17-jre-headless)"
    if major < JAVA_MAJOR:
        return f"Java {major} found, Flink needs Java {JAVA_MAJOR} or newer (Debian: openjdk-17-jre-headless)"
    return None


def require_flink() -> None:
    """Raise :class:`FlinkUnavailableError` with :func:`unavailable_reason` when Flink cannot run."""
    reason = unavailable_reason()
    if reason is not None:
        raise FlinkUnavailableError(reason)


def table_environment(*, deterministic: bool = True, config: Mapping[str, str] | None = None) -> Any:
    """A streaming ``StreamTableEnvironment`` (see the module docstring); ``config`` overrides options."""
    require_flink()
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    stream_env = StreamExecutionEnvironment.get_execution_environment()
    t_env = StreamTableEnvironment.create(stream_env, EnvironmentSettings.in_streaming_mode())
    options = {
        "table.local-time-zone": "UTC",
        # Every sink's key (pk, sk) is an injective function of its query's grouping keys, so the rows
        # already arrive per key in order: no upsert materializer (and no state for it) is needed.
        "table.exec.sink.upsert-materialize": "NONE",
        # Python table functions run in the interpreter that runs the job (this venv, these packages).
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
    }
    if deterministic:
        options |= {"parallelism.default": "1", "pipeline.auto-watermark-interval": "0 ms"}
    options |= dict(config or {})
    configuration = t_env.get_config()
    for key, value in options.items():
        configuration.set(key, value)
    return t_env


_TYPES: Final = {"STRING": "STRING", "BIGINT": "BIGINT", "INT": "INT", "BYTES": "BYTES"}


def data_type(sql_type: str) -> Any:
    """The PyFlink ``DataType`` of one of the SQL types the job declares (nullable; ``NOT NULL`` dropped)."""
    from pyflink.table import DataTypes

    base = sql_type.removesuffix(" NOT NULL").strip()
    if match := _DECIMAL.fullmatch(base):
        return DataTypes.DECIMAL(int(match[1]), int(match[2]))
    if base in _TYPES:
        return getattr(DataTypes, _TYPES[base])()
    raise ValueError(f"no PyFlink type for SQL type {sql_type!r}")


def execute_all(t_env: Any, statements: Iterable[str]) -> None:
    """Run DDL statements (``CREATE TEMPORARY VIEW`` / ``TABLE``) one after another."""
    for statement in statements:
        t_env.execute_sql(statement)


def _root_cause(exc: BaseException) -> str:
    text = str(exc)
    causes = [line for line in text.splitlines() if line.startswith("Caused by:")]
    return (causes[-1] if causes else text.splitlines()[0] if text else repr(exc))[:500]


def run(statement_set: Any) -> Any:
    """Execute a ``StatementSet`` and wait until the job ends; its ``TableResult``.

    Raises :class:`JobFailedError` (with Flink's root cause) if the job fails or cannot be submitted.
    """
    from py4j.protocol import Py4JJavaError

    try:
        result = statement_set.execute()
        result.wait()
    except Py4JJavaError as exc:
        raise JobFailedError(f"the Flink job failed: {_root_cause(exc)}") from exc
    return result


def release() -> None:
    """Stop PyFlink's helpers now, while the interpreter can still start threads.

    PyFlink registers its gRPC loopback server's shutdown with ``atexit``; on Python 3.12 that runs
    after threads are forbidden and prints an ignored-exception traceback. Command-line entry points
    call this as their last step; libraries and tests never do (it runs every ``atexit`` callback).
    """
    if "pyflink" in sys.modules:
        atexit._run_exitfuncs()
