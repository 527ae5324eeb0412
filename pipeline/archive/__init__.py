"""The S3 archive of every event: written by Firehose (through the transform), read back by type and date.

The flow, one module per step:

- :mod:`pipeline.archive.layout`: the key layout (``events/event_type=T/dt=D/...``, ``errors/...``), the
  one place keys are built and parsed;
- :mod:`pipeline.archive.transform`: the Firehose data transformation (the Lambda's core);
- :mod:`tools.local.firehose`: what the emulator's Firehose lacks, run locally with the
  same transform and layout (buffering by size and time, GZIP objects, the error prefix);
- :mod:`pipeline.archive.reader`: ``list_objects`` and ``read_events`` (streaming, bounded memory),
  for ``pipeline archive``, the analytics job and load replays.

Import from the submodules. This package imports none of them, so the transform Lambda loads (and its
least-privilege check scans) only what it uses.
"""

from __future__ import annotations

__all__: list[str] = []
