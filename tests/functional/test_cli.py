"""The ``pipeline`` command as users run it: real processes, real pipes, the README's own examples."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from pipeline.cli.main import COMMANDS
from pipeline.codecs import RecordFormat
from pipeline.settings import Settings

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


def test_decode_rejects_an_unknown_document_with_a_clear_message() -> None:
    result = _pipeline("decode", stdin=b'{"hello": "world"}\n{"x": 1}', check=False)
    assert result.returncode == 2
    assert b"a Lambda Kinesis event or a Firehose event" in result.stderr


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


def test_produce_to_a_missing_stream_says_what_was_not_delivered() -> None:
    # GIVEN an endpoint where nothing listens WHEN producing THEN exit 1 and the undelivered count is reported
    events = _pipeline("generate", "--events", "5", "--seed", "5").stdout
    result = _pipeline(
        "produce", "--stream", "nope", "--endpoint-url", "http://127.0.0.1:9", "--json", "-", stdin=events, check=False
    )
    assert result.returncode == 1
    assert orjson.loads(result.stdout)["undelivered"] == 5
