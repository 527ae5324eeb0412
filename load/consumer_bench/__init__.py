"""The parts of ``pipeline bench consumer`` (``load/bench_consumer.py`` runs them): counting on the
wire (:mod:`.counting`), the figures and targets (:mod:`.figures`), the consumers under test
(:mod:`.runs`), cold start (:mod:`.coldstart`) and the report (:mod:`.report`)."""
