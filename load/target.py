"""Where a load run sends: the live stack's stream and the table its lag probe reads.

By default the stack ``pipeline up`` wrote to the state dir (``stack-<stage>.json``): its endpoint,
stream, ``user_activities`` table and archive bucket. ``--endpoint-url`` and ``--stream`` override the
endpoint and the stream; without a stack file the tables and the archive are unknown, so the lag is
not measured and a replay needs ``--bucket``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from pipeline.exceptions import ConfigurationError
from pipeline.settings import Settings
from tools.local.state import stack_file

__all__ = ["LoadTarget", "resolve_target"]


@dataclass(frozen=True, slots=True)
class LoadTarget:
    settings: Settings
    stream: str
    activities_table: str | None
    archive_bucket: str | None
    source: str
    """Where these came from, for the report: the stack file, or the command line."""


def resolve_target(
    state_dir: Path,
    stage: str,
    *,
    endpoint_url: str | None = None,
    stream: str | None = None,
    bucket: str | None = None,
    settings: Settings | None = None,
) -> LoadTarget:
    """The target; raises :class:`ConfigurationError` (one line, what to do) when nothing says where to send."""
    base = settings or Settings.from_env()
    path = stack_file(state_dir, stage)
    document: dict[str, object] = {}
    if path.exists():
        try:
            document = orjson.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read {path}: {exc}; run 'pipeline up' again") from exc
    outputs = document.get("outputs")
    outputs = outputs if isinstance(outputs, dict) else {}
    if stream is None and not outputs:
        raise ConfigurationError(
            f"no live stack in {state_dir} (stage {stage}): run 'pipeline up', or pass --endpoint-url and --stream"
        )
    endpoint = endpoint_url or str(document.get("endpoint_url") or "") or base.endpoint_url
    resolved = base.with_(endpoint_url=endpoint) if endpoint else base
    if not endpoint_url and document.get("region"):
        resolved = resolved.with_(region=str(document["region"]))
    from_stack = stream is None or stream == outputs.get("StreamName")
    table = outputs.get("UserActivitiesTable") if from_stack else None
    return LoadTarget(
        settings=resolved,
        stream=stream or str(outputs["StreamName"]),
        activities_table=str(table) if table else None,
        archive_bucket=bucket or (str(outputs["ArchiveBucket"]) if "ArchiveBucket" in outputs else None),
        source=str(path) if outputs else "the command line",
    )
