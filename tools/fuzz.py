"""A coverage-guided fuzz campaign on the record decoder (``decode_record``, ``decode_records``).

    python -m tools.fuzz --iterations 200000          # from the project's venv

The fuzzer is atheris (libFuzzer for Python; it instruments ``pipeline`` for coverage), pinned at
:data:`ATHERIS_VERSION`: the last release with wheels for CPython 3.11. It is not a project dependency:
when it is not importable, this command re-runs itself with ``uv run --with atheris==...`` on the same
interpreter, with this venv's packages on ``PYTHONPATH`` (so the decoder runs on the locked versions).

The campaign: a work corpus seeded from :data:`CORPUS` (tests/fuzz_corpus) and from valid records of
every format; ``--iterations`` runs of libFuzzer; then a libFuzzer merge adds to :data:`CORPUS` only
the inputs that reach new coverage, and every crash found is copied there as ``crash-<sha1>``.
``tests/unit/test_fuzz_corpus.py`` runs the corpus on every test run. A crash is any exception from the
decoder, or a result that is neither a decoded event nor a decode error keeping bytes.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["ATHERIS_VERSION", "CORPUS", "check_input", "main"]

ATHERIS_VERSION = "2.3.0"
ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fuzz_corpus"
_MAX_LEN = 8192
_NOT_AFTER = datetime(2030, 1, 1, tzinfo=UTC)
_ARRIVAL = datetime(2026, 11, 20, tzinfo=UTC)


def check_input(data: bytes) -> None:
    """Decode ``data`` both ways; raise ``AssertionError`` if a result breaks the decoder's contract.

    Any other exception escaping the decoder is a finding as it stands.
    """
    from pipeline.codecs import DecodedEvent, decode_record, decode_records
    from pipeline.exceptions import DecodeError
    from pipeline.stream import StreamRecord

    one = decode_record(data, "shardId-0", "1", _NOT_AFTER)
    batch = decode_records([StreamRecord("shardId-0", "1", data, _ARRIVAL, "k")])
    for results in (one, batch):
        if not results:
            raise AssertionError("no result at all for a record")
        for result in results:
            if isinstance(result, DecodeError):
                if not isinstance(result.raw, bytes) or not result.reason:
                    raise AssertionError(f"a decode error without bytes or reason: {result!r}")
            elif not isinstance(result, DecodedEvent):
                raise AssertionError(f"neither an event nor an error: {result!r}")


def _seeds() -> list[bytes]:
    """Valid records of every format, so mutation starts from the real structures."""
    from pipeline.codecs import RecordFormat, encode_records
    from tools.generate import generate_events

    events = list(generate_events(6, seed=13))
    return [encode_records(events, fmt)[0].data for fmt in RecordFormat]


def _libfuzzer(args: list[str]) -> None:
    """Inside the atheris environment: libFuzzer with ``args``; never returns."""
    atheris: Any = importlib.import_module("atheris")  # untyped, and absent from the project's venv
    with atheris.instrument_imports(include=["pipeline"]):  # coverage of the decoder's Python code
        importlib.import_module("pipeline.codecs.decode")
        importlib.import_module("pipeline.codecs.gzipcodec")
        importlib.import_module("pipeline.codecs.kpl")
        importlib.import_module("pipeline.events.decoder")
    # libFuzzer re-runs argv[0] (unquoted, through the shell) for -merge=1: give it this very command.
    atheris.Setup([f"{sys.executable} -m tools.fuzz --libfuzzer", *args], check_input)
    atheris.Fuzz()


def _uv() -> str:
    uv = os.environ.get("PIPELINE_UV") or shutil.which("uv")
    if not uv:
        raise SystemExit("uv is needed to run atheris in its own environment (./dev setup installs it)")
    return uv


def _fuzz_python() -> str:
    """An interpreter atheris has wheels for (3.11): this one, else the library's 3.11 venv ``./dev`` makes."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    python = ROOT / ".venv-py3.11" / "bin" / "python"
    if not python.exists():
        raise SystemExit(
            f"atheris {ATHERIS_VERSION} has wheels for Python 3.11 only: run ./dev setup (it makes .venv-py3.11) "
            "or run this with a Python 3.11 that has the project's dependencies"
        )
    return str(python)


def _run_libfuzzer(args: list[str]) -> int:
    """Run this module's libFuzzer mode with atheris, in this interpreter or through uv."""
    if importlib.util.find_spec("atheris") is None:
        python = _fuzz_python()
        purelib = subprocess.run(  # noqa: S603 - a project interpreter, fixed code
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), purelib])}
        command = [_uv(), "run", "--no-project", "--isolated", "--python", python]
        command += ["--with", f"atheris=={ATHERIS_VERSION}", "python", "-m", "tools.fuzz", "--libfuzzer", *args]
    else:
        env = dict(os.environ)
        command = [sys.executable, "-m", "tools.fuzz", "--libfuzzer", *args]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode  # noqa: S603 - our own command


def campaign(iterations: int, seed: int) -> dict[str, Any]:
    """Fuzz ``iterations`` inputs, merge what is new into :data:`CORPUS`; what happened."""
    CORPUS.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in CORPUS.iterdir()}
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        work, crashes = Path(tmp, "work"), Path(tmp, "crashes")
        work.mkdir()
        crashes.mkdir()
        for path in CORPUS.iterdir():
            shutil.copy(path, work / path.name)
        for index, data in enumerate(_seeds()):
            (work / f"seed-{index}").write_bytes(data)
        common = [f"-max_len={_MAX_LEN}", "-rss_limit_mb=1024", "-timeout=20"]
        rc = _run_libfuzzer(
            [*common, f"-runs={iterations}", f"-seed={seed}", f"-artifact_prefix={crashes}/", str(work)]
        )
        merge_rc = _run_libfuzzer([*common, "-merge=1", str(CORPUS), str(work)])
        found = sorted(crashes.iterdir())
        for path in found:
            shutil.copy(path, CORPUS / path.name)
    added = sorted({p.name for p in CORPUS.iterdir()} - before)
    return {
        "iterations": iterations,
        "fuzz_exit": rc,
        "merge_exit": merge_rc,
        "crashes": [p.name for p in found],
        "added": len(added),
        "corpus": len(list(CORPUS.iterdir())),
    }


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--libfuzzer"]:
        _libfuzzer(args[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m tools.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100_000, help="libFuzzer runs (default 100,000)")
    parser.add_argument("--seed", type=int, default=13, help="libFuzzer's random seed (default 13)")
    options = parser.parse_args(args)
    report = campaign(options.iterations, options.seed)
    sys.stdout.write(f"{report}\n")
    return 1 if report["crashes"] or report["fuzz_exit"] not in (0,) else 0


if __name__ == "__main__":
    sys.exit(main())
