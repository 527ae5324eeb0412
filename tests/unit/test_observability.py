"""Tracing is switched by the environment the template sets, and costs nothing when off."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.consumer.observability import traced, tracing_enabled


def _handler(event: dict[str, object], context: object) -> dict[str, object]:
    return {"batchItemFailures": []}


def test_tracing_off_leaves_the_handler_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert not tracing_enabled()
    assert traced(_handler) is _handler


def test_tracing_on_wraps_the_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    assert tracing_enabled()
    wrapped = traced(_handler)
    assert wrapped is not _handler


def test_tracing_off_never_imports_the_xray_sdk() -> None:
    code = (
        "import os, sys; os.environ['POWERTOOLS_TRACE_DISABLED'] = 'true';"
        "from pipeline.consumer.observability import traced; traced(lambda e, c: None);"
        "print('aws_xray_sdk' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
