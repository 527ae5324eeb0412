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
- :class:`LocalCluster` is one Flink mini-cluster inside that JVM; environments built with its
  :attr:`~LocalCluster.options` submit their jobs to it (through its REST endpoint on 127.0.0.1), so
  jobs after the first skip the cluster start. Without it, each job starts a mini-cluster of its own.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from analytics.errors import FlinkUnavailableError, JobFailedError

__all__ = [
    "JAVA_MAJOR",
    "LocalCluster",
    "bytes_table",
    "data_type",
    "execute_all",
    "java_version",
    "require_flink",
    "run",
    "schema_builder",
    "shared_cluster",
    "table_environment",
    "table_function",
    "unavailable_reason",
]

JAVA_MAJOR: Final = 17
"""PyFlink 2.x runs on Java 17 (Managed Flink 2.2 too); Debian: ``apt-get install openjdk-17-jre-headless``."""

_VERSION: Final = re.compile(r'version "((\d+)(?:\.(\d+))?[^"]*)"')
_DECIMAL: Final = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


@contextmanager
def _pyflink_imports() -> Iterator[None]:
    """PyFlink's own warnings, not ours to fix: deprecations of its classes when its modules load, and the
    ``ResourceWarning`` of the JVM's ``Popen`` that its gateway launcher drops (the JVM lives on)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", ResourceWarning)
        yield


def _quiet_interrupts(record: logging.LogRecord) -> bool:
    """Drop py4j's "KeyboardInterrupt while sending command" traceback: on Ctrl-C (or SIGTERM, which the
    CLI turns into one) the interrupt itself is reported and cleaned up by the caller, once."""
    return not str(record.msg).startswith("KeyboardInterrupt while sending command")


def _gateway() -> Any:
    """PyFlink's py4j gateway to its JVM, launched on first use."""
    with _pyflink_imports():
        from pyflink.java_gateway import get_gateway

        logging.getLogger().addFilter(_quiet_interrupts)  # py4j logs it on the root logger; idempotent
        return get_gateway()


def java_version() -> str | None:
    """The version ``java -version`` reports (``17.0.15``), or ``None`` when no ``java`` runs."""
    java = shutil.which("java")
    if java is None:
        return None
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(done.stderr + done.stdout)
    return None if match is None else match[1]


def _java_major() -> int | None:
    version = java_version()
    match = _VERSION.search(f'version "{version}"') if version else None
    if match is None:
        return None
    major = int(match[2])
    return int(match[3] or 0) if major == 1 else major  # "1.8.0" is Java 8


def unavailable_reason() -> str | None:
    """Why Flink cannot run on this machine (one line), or ``None`` when it can."""
    try:
        with _pyflink_imports():
            import pyflink  # noqa: F401
    except ImportError:
        return (
            "PyFlink is not installed: install the 'analytics' dependency group on Python 3.11 or 3.12 "
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


def table_environment(
    *, deterministic: bool = True, config: Mapping[str, str] | None = None, this_python: bool = True
) -> Any:
    """A streaming ``StreamTableEnvironment`` (see the module docstring); ``config`` overrides options.

    The options are given to the execution environment as it is created: with a
    :class:`LocalCluster`'s options the environment is remote from the start, so PyFlink starts none
    of its in-process helpers for local execution (its loopback worker server). ``this_python``: Python
    functions run with this interpreter (local runs); Managed Flink sets its own.
    """
    require_flink()
    gateway = _gateway()
    with _pyflink_imports():
        from pyflink.common import Configuration
        from pyflink.datastream import StreamExecutionEnvironment
        from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    options = {
        "table.local-time-zone": "UTC",
        # Every sink's key (pk, sk) is an injective function of its query's grouping keys, so the rows
        # already arrive per key in order: no upsert materializer (and no state for it) is needed.
        "table.exec.sink.upsert-materialize": "NONE",
    }
    if this_python:  # Python table functions run in this interpreter (this venv, these packages)
        options |= {"python.executable": sys.executable, "python.client.executable": sys.executable}
    if deterministic:
        options |= {"parallelism.default": "1", "pipeline.auto-watermark-interval": "0 ms"}
    options |= dict(config or {})
    configuration = Configuration()
    for key, value in options.items():
        configuration.set_string(key, value)
    if options.get("execution.target") == "remote":
        # A remote environment from the start (getExecutionEnvironment would make a local one first,
        # and PyFlink would start its local-only loopback worker server for it).
        j_environments = gateway.jvm.org.apache.flink.streaming.api.environment.StreamExecutionEnvironment
        j_env = j_environments.createRemoteEnvironment(
            options["rest.address"],
            int(options["rest.port"]),
            configuration._j_configuration,
            gateway.new_array(gateway.jvm.String, 0),
        )
        stream_env = StreamExecutionEnvironment(j_env)
    else:
        stream_env = StreamExecutionEnvironment.get_execution_environment(configuration)
    t_env = StreamTableEnvironment.create(stream_env, EnvironmentSettings.in_streaming_mode())
    table_config = t_env.get_config()
    for key, value in options.items():
        table_config.set(key, value)
    return t_env


class LocalCluster:
    """A Flink mini-cluster in PyFlink's JVM, shared by the jobs of environments built with :attr:`options`.

    Use as a context manager (or :meth:`start` / :meth:`close`); :meth:`close` stops it, waiting for
    running jobs to be cancelled. Python functions of its jobs run in worker processes started with
    this interpreter, as on a real cluster. Not thread-safe.
    """

    def __init__(self, *, slots: int = 4) -> None:
        self._slots = slots
        self._cluster: Any = None
        self.options: dict[str, str] = {}
        """Environment options that submit to this cluster (empty until started)."""

    def start(self) -> LocalCluster:
        require_flink()
        jvm = _gateway().jvm
        configuration = jvm.org.apache.flink.configuration.Configuration()
        configuration.setString("rest.bind-address", "127.0.0.1")
        configuration.setString("rest.address", "127.0.0.1")
        configuration.setString("rest.port", "0")  # any free port
        builder = jvm.org.apache.flink.runtime.minicluster.MiniClusterConfiguration.Builder()
        built = builder.setConfiguration(configuration).setNumTaskManagers(1).setNumSlotsPerTaskManager(self._slots)
        self._cluster = jvm.org.apache.flink.runtime.minicluster.MiniCluster(built.build())
        self._cluster.start()
        address = self._cluster.getRestAddress().get()
        self.options = {
            "execution.target": "remote",
            "rest.address": str(address.getHost()),
            "rest.port": str(address.getPort()),
        }
        return self

    def close(self) -> None:
        if self._cluster is not None:
            cluster, self._cluster, self.options = self._cluster, None, {}
            cluster.close()
        if _SHARED.get("cluster") is self:
            del _SHARED["cluster"]

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_SHARED: dict[str, LocalCluster] = {}


def shared_cluster() -> LocalCluster:
    """This process's :class:`LocalCluster`, started on first use; closing it lets the next call start another."""
    if "cluster" not in _SHARED:
        _SHARED["cluster"] = LocalCluster().start()
    return _SHARED["cluster"]


_TYPES: Final = {"STRING": "STRING", "BIGINT": "BIGINT", "INT": "INT", "BYTES": "BYTES"}


def data_type(sql_type: str) -> Any:
    """The PyFlink ``DataType`` of one of the SQL types the job declares (``NOT NULL`` kept)."""
    with _pyflink_imports():
        from pyflink.table import DataTypes

    base = sql_type.removesuffix(" NOT NULL").strip()
    nullable = not sql_type.endswith(" NOT NULL")
    if match := _DECIMAL.fullmatch(base):
        return DataTypes.DECIMAL(int(match[1]), int(match[2]), nullable)
    if base in _TYPES:
        return getattr(DataTypes, _TYPES[base])(nullable)
    raise ValueError(f"no PyFlink type for SQL type {sql_type!r}")


def table_function(function: Callable[..., Iterator[tuple[Any, ...]]], sql_types: Iterable[str]) -> Any:
    """``function`` as a PyFlink table function with result columns of ``sql_types``."""
    with _pyflink_imports():
        from pyflink.table.udf import udtf

    return udtf(function, result_types=[data_type(sql_type) for sql_type in sql_types])


def bytes_table(t_env: Any, records: Iterable[bytes]) -> Any:
    """A bounded table of ``records`` with one ``BYTES`` column ``data``: what the Kinesis source gives the
    stream binding, for replaying raw records without the connector (tests, local checks)."""
    with _pyflink_imports():
        from pyflink.table import DataTypes

    row_type = DataTypes.ROW([DataTypes.FIELD("data", DataTypes.BYTES())])
    return t_env.from_elements([(bytearray(record),) for record in records], row_type)


def schema_builder() -> Any:
    """A PyFlink ``Schema`` builder (for a table made from a DataStream)."""
    with _pyflink_imports():
        from pyflink.table import Schema

    return Schema.new_builder()


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
    with _pyflink_imports():
        from py4j.protocol import Py4JJavaError

    try:
        result = statement_set.execute()
        result.wait()
    except Py4JJavaError as exc:
        raise JobFailedError(f"the Flink job failed: {_root_cause(exc)}") from exc
    return result
