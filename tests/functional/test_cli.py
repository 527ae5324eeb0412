"""The ``pipeline`` command as users run it: real processes, real pipes, the README's own examples."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from pipeline.codecs import RecordFormat
from pipeline.settings import Settings
from tools.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EVENTS = ROOT / "tests" / "events"


def _pipeline(*args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run([str(BIN / "pipeline"), *args], input=stdin, capture_output=True, timeout=300, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"pipeline {' '.join(args)} exited {result.returncode}: {result.stderr.decode()[-2000:]}")
    return result


@pytest.fixture(scope="module")
def ten_thousand() -> bytes:
    return _pipeline("generate", "--events", "10000", "--seed", "11").stdout


@pytest.mark.parametrize("fmt", [pytest.param(f.value, id=f.value) for f in RecordFormat])
def test_encode_then_decode_returns_the_input_events_exactly(ten_thousand: bytes, fmt: str) -> None:
    # GIVEN 10,000 generated events WHEN encoded in a format and decoded again
    records = _pipeline("encode", "--format", fmt, "--shards", "3", stdin=ten_thousand).stdout
    back = _pipeline("decode", stdin=records)
    # THEN the same event lines come back (batched formats regroup by shard, so compare as multisets)
    assert back.stderr == b""
    assert sorted(back.stdout.splitlines()) == sorted(ten_thousand.splitlines())
    if fmt == "json":
        assert back.stdout == ten_thousand  # one event per record keeps the input order too


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("encode", "--shards", "0"), b"--shards: must be at least 1", id="zero-shards"),
        pytest.param(("generate", "--events", "-5"), b"--events: must be zero or more", id="negative-events"),
        pytest.param(("demo", "--events", "lots"), b"'lots' is not a whole number", id="not-a-number"),
        pytest.param(("demo", "--fault-rate", "2"), b"between 0 and 1", id="fault-rate-past-one"),
        pytest.param(("produce", "--stream", "s", "--endpoint-url", "localhost:4566"), b"endpoint URL", id="bad-url"),
        pytest.param(
            ("produce", "--stream", "s", "--endpoint-url", "http://127.0.0.1:1"),
            b"Could not connect to the endpoint URL",
            id="unreachable-endpoint",
        ),
        pytest.param(("decode", "no-such-file.ndjson"), b"input file not found: no-such-file.ndjson", id="no-file"),
    ],
)
def test_a_wrong_argument_or_endpoint_is_one_line_and_exit_2(args: tuple[str, ...], message: bytes) -> None:
    # GIVEN a command with a wrong argument, file or endpoint WHEN run
    result = _pipeline(*args, stdin=b"", check=False)
    # THEN one line on stderr that says what is wrong, exit 2, never a traceback
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert b"Traceback" not in result.stderr


def test_missing_credentials_for_real_aws_are_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PIPELINE_ENDPOINT_URL"}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true")
    result = subprocess.run(
        [str(BIN / "pipeline"), "produce", "--stream", "s", "/dev/null"],
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 2
    assert b"set AWS credentials" in result.stderr
    assert b"Traceback" not in result.stderr


def test_pipes_and_dev_stdin_are_input_files() -> None:
    events = _pipeline("generate", "--events", "20").stdout
    records = _pipeline("encode", "/dev/stdin", stdin=events).stdout
    via_dev_stdin = _pipeline("decode", "/dev/stdin", stdin=records).stdout
    via_process_substitution = subprocess.run(
        ["bash", "-c", f"{BIN / 'pipeline'} decode <(cat)"], input=records, capture_output=True, check=True
    ).stdout
    assert via_dev_stdin == via_process_substitution == events


def test_generate_is_deterministic() -> None:
    first = _pipeline("generate", "--events", "500", "--seed", "3").stdout
    assert first == _pipeline("generate", "--events", "500", "--seed", "3").stdout
    assert first != _pipeline("generate", "--events", "500", "--seed", "4").stdout


@pytest.mark.parametrize(
    "sample",
    [
        pytest.param("kinesis_batch_mixed.json", id="lambda-kinesis-event"),
        pytest.param("firehose_kinesis_source_mixed.json", id="firehose-event"),
    ],
)
def test_decode_reads_lambda_and_firehose_events_and_reports_each_bad_record(sample: str) -> None:
    # GIVEN a real event shape holding JSON, gzip, KPL and gzip-batch records, one bad line and one junk record
    result = _pipeline("decode", str(EVENTS / sample), check=False)
    # THEN six events on stdout, one line per bad unit on stderr with reason, position and raw bytes, exit 1
    assert result.returncode == 1
    events = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 6
    errors = [orjson.loads(line) for line in result.stderr.splitlines()]
    assert [e["reason"].split(":")[0] for e in errors] == ["invalid event", "invalid JSON"]
    assert all(e["shard_id"] == "shardId-000000000001" and e["sequence_number"] for e in errors)
    assert base64.b64decode(errors[1]["raw"]) == b"\xff\xfe not json at all"
    assert errors[0]["line"] == 1  # the second line of a gzip batch; the first decoded fine


def test_decode_reports_every_line_that_is_not_a_record_and_goes_on() -> None:
    # GIVEN JSON lines without record data, a line that is not JSON, then a good record
    good = _pipeline("encode", stdin=_pipeline("generate", "--events", "1").stdout).stdout
    result = _pipeline("decode", stdin=b'{"hello": "world"}\nnot json\n' + good, check=False)
    # THEN each bad line is one error line on stderr, the good record is decoded, exit 1, no traceback
    assert result.returncode == 1
    errors = [orjson.loads(line) for line in result.stderr.splitlines()]
    assert [e["sequence_number"] for e in errors] == ["line 1", "line 2"]
    assert all(e["reason"].startswith("not a record") for e in errors)
    assert len(result.stdout.splitlines()) == 1
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_explains_itself(command: str) -> None:
    result = _pipeline(command, "--help")
    assert b"usage: pipeline" in result.stdout
    assert len(result.stdout) > 200


def _readme_blocks() -> Sequence[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"<!-- readme-test -->\n```sh\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("block", _readme_blocks())
def test_readme_examples_run(block: str, tmp_path: Path) -> None:
    # GIVEN a README example WHEN run by bash in an empty folder THEN it succeeds and prints what it claims
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        ["/bin/bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    claims = re.findall(r'echo "([^"$]+)', block)
    for claim in claims:
        assert claim.encode() in result.stdout


def test_readme_has_examples() -> None:
    assert len(_readme_blocks()) >= 2


@pytest.mark.emulator
def test_produce_publishes_and_prints_a_json_summary(emulator: Settings, kinesis_stream: str) -> None:
    # GIVEN generated events and a stream on the emulator
    events = _pipeline("generate", "--events", "2000", "--seed", "5").stdout
    assert emulator.endpoint_url is not None
    # WHEN published through `pipeline produce --json`
    result = _pipeline(
        "produce",
        "--stream",
        kinesis_stream,
        "--endpoint-url",
        emulator.endpoint_url,
        "--format",
        "gzip-batch",
        "--json",
        "-",
        stdin=events,
    )
    # THEN the summary counts every event, and names the records, bytes and calls it took
    summary = orjson.loads(result.stdout)
    assert summary["events"] == 2000
    assert summary["undelivered"] == 0
    assert 1 <= summary["records"] <= 10
    assert summary["put_calls"] >= 1
    assert summary["bytes"] > 0
    assert {"retries", "throttled_calls", "elapsed_s", "events_per_s"} <= summary.keys()


@pytest.mark.emulator
def test_produce_to_a_missing_stream_is_one_line_before_anything_is_sent(emulator: Settings) -> None:
    # GIVEN a running emulator without that stream WHEN producing
    events = _pipeline("generate", "--events", "5", "--seed", "5").stdout
    result = _pipeline(
        "produce", "--stream", "nope", "--endpoint-url", str(emulator.endpoint_url), "-", stdin=events, check=False
    )
    # THEN one line naming what AWS refused, exit 2, and the producer spent no retries on it
    assert result.returncode == 2
    assert b"ResourceNotFound" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
