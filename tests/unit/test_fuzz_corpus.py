"""The fuzz campaign's corpus (tests/fuzz_corpus, made by ``python -m tools.fuzz``) as regression tests.

Every entry, the inputs that reached new coverage and any that once crashed the decoder, decodes
without raising into events or decode errors that keep bytes and a reason, both through
``decode_record`` and ``decode_records`` (:func:`tools.fuzz.check_input`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.fuzz import CORPUS, check_input

ENTRIES = sorted(CORPUS.iterdir())


def test_the_corpus_is_there() -> None:
    assert len(ENTRIES) >= 10


@pytest.mark.parametrize("entry", [pytest.param(p, id=p.name) for p in ENTRIES])
def test_a_corpus_entry_decodes_into_events_or_bad_rows(entry: Path) -> None:
    check_input(entry.read_bytes())
