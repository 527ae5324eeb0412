"""Pure pieces of the SQL store: placeholders and statement splitting, Data API value conversions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.stores.errors import SqlError
from pipeline.stores.sql.data_api import from_field, to_parameter
from pipeline.stores.sql.text import parameter_names, split_statements, to_pyformat

_literal_text = st.text(alphabet=st.sampled_from("ab:;%$' \n-/*\"\\"), max_size=30)


@given(_literal_text)
def test_nothing_inside_a_string_literal_is_a_parameter_or_a_boundary(text: str) -> None:
    literal = "'" + text.replace("'", "''") + "'"
    sql = f"SELECT {literal} AS x, :real AS y"
    assert parameter_names(sql) == ["real"]
    assert split_statements(sql + "; SELECT 2") == [sql, "SELECT 2"]
    assert to_pyformat(sql) == "SELECT " + literal.replace("%", "%%") + " AS x, %(real)s AS y"


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        pytest.param("SELECT a::int, :b", ["b"], id="cast"),
        pytest.param('SELECT ":x" FROM "t:y" WHERE c = :c', ["c"], id="quoted-identifier"),
        pytest.param("SELECT $$ :x; $$, $f$ :y $f$, :z", ["z"], id="dollar-quotes"),
        pytest.param("SELECT 1 -- :x\n, /* :y /* :w */ */ :z", ["z"], id="comments"),
        pytest.param("SELECT E'it\\'s :x', :y, :y", ["y"], id="escape-string-and-repeat"),
    ],
)
def test_placeholders_are_found_where_postgresql_would_see_code(sql: str, names: list[str]) -> None:
    assert parameter_names(sql) == names


def test_a_script_splits_into_its_statements_without_empty_or_comment_only_ones() -> None:
    script = "-- header\nCREATE TABLE a (x text DEFAULT ';');\n\n/* note; */\nCREATE INDEX i ON a (x);\n-- end\n"
    assert split_statements(script) == [
        "-- header\nCREATE TABLE a (x text DEFAULT ';')",
        "/* note; */\nCREATE INDEX i ON a (x)",
    ]


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**12), max_value=10**12))
def test_money_crosses_the_data_api_as_exact_text(amount: Decimal) -> None:
    parameter = to_parameter("amount", amount)
    assert parameter["typeHint"] == "DECIMAL"
    assert from_field(parameter["value"], "numeric") == amount


_NAIVE_RANGE = (datetime(1971, 1, 1), datetime(2200, 1, 1))  # noqa: DTZ001 - hypothesis bounds are naive


@given(st.datetimes(min_value=_NAIVE_RANGE[0], max_value=_NAIVE_RANGE[1], timezones=st.just(UTC)))
def test_instants_cross_the_data_api_in_utc(when: datetime) -> None:
    parameter = to_parameter("at", when)
    assert parameter["typeHint"] == "TIMESTAMP"
    assert from_field(parameter["value"], "timestamptz") == when


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(SqlError):
        to_parameter("at", datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
