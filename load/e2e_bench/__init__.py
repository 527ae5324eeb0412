"""The parts of ``pipeline bench e2e`` (``load/bench_e2e.py`` runs them): the figures and the ``--json``
shape (:mod:`.figures`), the two runs on fresh stacks (:mod:`.runs`) and the report (:mod:`.report`)."""
