"""Cold start: wall time of a fresh ``python -c`` importing the handler, against ``import boto3``.

Each variant runs in a subprocess of this interpreter with the environment the template gives the
function (no AWS, Powertools or pipeline settings of this shell), best of ``rounds``, alternated,
after one unrecorded round that writes bytecode caches and fills the page cache.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from load.consumer_bench.figures import ColdStartFigures
from load.consumer_bench.runs import BenchCheckError
from pipeline.metrics.tables import QUEUES, TABLES

__all__ = ["cold_start"]

_REPO: Final = Path(__file__).resolve().parents[2]


def _lambda_environment(*, trace_disabled: bool) -> dict[str, str]:
    """This environment without AWS, Powertools and pipeline settings, plus what the template gives the function."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PIPELINE_"))}
    env.update({spec.env: f"event-pipeline-bench-{name}" for name, spec in TABLES.items()})
    env.update({var: f"https://sqs.us-east-1.amazonaws.com/000000000000/bench-{q}.fifo" for q, var in QUEUES.items()})
    env.update(
        BAD_ROWS_BUCKET="event-pipeline-bench-bad-rows",
        BAD_ROWS_PREFIX="bad-rows/",
        AWS_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="event-pipeline",
        POWERTOOLS_METRICS_NAMESPACE="EventPipeline",
        POWERTOOLS_LOG_LEVEL="INFO",
    )
    if trace_disabled:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def _python_seconds(code: str, env: Mapping[str, str]) -> float:
    """Wall seconds of ``python -c code`` in a fresh process of this interpreter, from the repository root."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], cwd=_REPO, env=dict(env), capture_output=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise BenchCheckError(f"python -c {code!r} failed ({done.returncode}): {' | '.join(tail)}")
    return elapsed


def cold_start(rounds: int, note: Callable[[str], None]) -> ColdStartFigures:
    traced, untraced = _lambda_environment(trace_disabled=False), _lambda_environment(trace_disabled=True)
    variants = {
        "interpreter": ("pass", traced),
        "boto3": ("import boto3", traced),
        "handler": ("import consumers.kinesis_consumer", traced),
        "handler_trace_disabled": ("import consumers.kinesis_consumer", untraced),
    }
    for code, env in variants.values():  # unrecorded: writes bytecode caches, fills the page cache
        _python_seconds(code, env)
    best = dict.fromkeys(variants, math.inf)
    for round_number in range(1, rounds + 1):
        note(f"cold start: round {round_number}/{rounds}")
        for name, (code, env) in variants.items():
            best[name] = min(best[name], _python_seconds(code, env))
    return ColdStartFigures(rounds, **{f"{name}_s": seconds for name, seconds in best.items()})
