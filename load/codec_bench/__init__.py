"""The parts of ``pipeline bench codec`` (``load/bench_codec.py`` runs them): the figures, limits and
targets (:mod:`.figures`), the timed loops and the round-trip check (:mod:`.loops`), and the report
(:mod:`.report`)."""
