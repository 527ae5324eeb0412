"""Pinned command-line tools (SAM CLI, cfn-lint, checkov), each run by uv in an environment of its own.

Guarantees:

- Nothing is installed into the project's venv: ``uv tool run --from '<name>==<version>'`` builds and
  caches an environment per pin, so a tool's own pins (the SAM CLI's botocore, for one) never meet ours.
  The first run of a pin downloads it from PyPI (seconds); later runs reuse uv's cache.
- :func:`offline_aws_env` is the environment for commands that must never reach AWS (``sam validate``,
  ``sam build``): dummy credentials, no profile, telemetry off.

These functions only build argument lists and environments; callers run them (``subprocess.run``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from pipeline.exceptions import ConfigurationError

__all__ = [
    "CFN_LINT_VERSION",
    "CHECKOV_VERSION",
    "SAM_CLI_VERSION",
    "cfn_lint_command",
    "checkov_command",
    "offline_aws_env",
    "pinned_tool",
    "sam_command",
    "uv_tool_run",
]

SAM_CLI_VERSION = "1.170.0"
CFN_LINT_VERSION = "1.51.0"
CHECKOV_VERSION = "3.3.30"

_OFFLINE_AWS = {
    "AWS_ACCESS_KEY_ID": "offline",
    "AWS_SECRET_ACCESS_KEY": "offline",  # a dummy: no real credential is ever used
    "SAM_CLI_TELEMETRY": "0",
}
_DROPPED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def uv_tool_run() -> list[str]:
    """How to run a pinned tool in its own environment: ``$PIPELINE_UV tool run``, else ``uvx``, else ``uv``.

    ``./dev`` exports ``PIPELINE_UV`` (the uv it installed), so a fresh machine needs nothing on PATH.
    Raises :class:`ConfigurationError` if no uv is found.
    """
    uv = os.environ.get("PIPELINE_UV")
    if uv and Path(uv).is_file():
        return [uv, "tool", "run"]
    if uvx := shutil.which("uvx"):
        return [uvx]
    if uv := shutil.which("uv"):
        return [uv, "tool", "run"]
    raise ConfigurationError(
        "uv is needed to run pinned tools and was not found: run ./dev setup, or 'python3 -m pip install uv', "
        "or set PIPELINE_UV to a uv binary"
    )


def pinned_tool(spec: str, executable: str, *args: str) -> list[str]:
    """The command running ``executable`` from the package ``spec`` (``name==version``) with ``args``."""
    return [*uv_tool_run(), "--from", spec, executable, *args]


def sam_command(*args: str) -> list[str]:
    """``sam ARGS`` from aws-sam-cli :data:`SAM_CLI_VERSION`. Run it with :func:`offline_aws_env`."""
    return pinned_tool(f"aws-sam-cli=={SAM_CLI_VERSION}", "sam", *args)


def cfn_lint_command(*args: str) -> list[str]:
    """``cfn-lint ARGS`` from cfn-lint :data:`CFN_LINT_VERSION`."""
    return pinned_tool(f"cfn-lint=={CFN_LINT_VERSION}", "cfn-lint", *args)


def checkov_command(*args: str) -> list[str]:
    """``checkov ARGS`` from checkov :data:`CHECKOV_VERSION` (static analysis; reads files only)."""
    return pinned_tool(f"checkov=={CHECKOV_VERSION}", "checkov", *args)


def offline_aws_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) with dummy AWS credentials, no profile or session token, a
    region (``AWS_DEFAULT_REGION``, default ``us-east-1``) and SAM CLI telemetry off.

    A command given this environment cannot act on a real account: a call that does reach AWS fails
    to authenticate.
    """
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if k not in _DROPPED}
    env.update(_OFFLINE_AWS)
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION") or "us-east-1")
    return env
