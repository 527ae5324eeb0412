"""Tracing that costs cold start only when it is switched on.

Powertools' ``Tracer`` imports the X-Ray SDK, which builds its recorder at import: about 0.14 s of
every cold start on a 2-core machine, even with tracing disabled. So the X-Ray SDK is imported only
when tracing is on (``POWERTOOLS_TRACE_DISABLED`` not true; the template derives it from its
``Tracing`` parameter), and a handler wrapped by :func:`traced` is the handler itself otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

__all__ = ["traced", "tracing_enabled"]

F = TypeVar("F", bound=Callable[..., Any])


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``POWERTOOLS_TRACE_DISABLED`` (in ``environ``, ``os.environ`` by default) leaves tracing on."""
    value = (os.environ if environ is None else environ).get("POWERTOOLS_TRACE_DISABLED", "")
    return value.strip().lower() not in {"1", "true", "yes"}


def traced(handler: F, enabled: bool | None = None) -> F:
    """``Tracer().capture_lambda_handler`` when tracing is on (``enabled``, else :func:`tracing_enabled`);
    ``handler`` unchanged when it is off."""
    if not (tracing_enabled() if enabled is None else enabled):
        return handler
    from aws_lambda_powertools import Tracer

    return cast(F, Tracer(auto_patch=False).capture_lambda_handler(handler, capture_response=False))
