"""Entry point of the analytics job on Amazon Managed Service for Apache Flink.

The application's runtime properties name this file (``kinesis.analytics.flink.run.options``:
``python = main.py``); the project's code and its Python dependencies are under ``dep/`` in the same
zip (``pyFiles = dep/``, which the service also puts on the Python path of the UDF workers).
"""

import sys
from pathlib import Path

_DEPENDENCIES = Path(__file__).resolve().parent / "dep"
if str(_DEPENDENCIES) not in sys.path:
    sys.path.insert(0, str(_DEPENDENCIES))

from analytics.managed import main  # noqa: E402 - after the path set-up above

if __name__ == "__main__":
    main()
