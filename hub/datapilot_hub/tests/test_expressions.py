"""The expression language: parsing, positions of errors, types, and what DuckDB makes
of the compiled SQL on a small table (the rows each filter keeps)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pytest

from datapilot_hub.domain.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    ExpressionError,
    compile_expression,
    parse,
)

SCHEMA = {
    "id": "integer",
    "day": "date",
    "ts": "datetime",
    "region": "string",
    "amount": "number",
    "units": "integer",
    "paid": "boolean",
    "in": "string",  # a column named like a keyword
}

ROWS = pa.table(
    {
        "id": [1, 2, 3, 4, 5],
        "day": pa.array(
            [
                dt.date(2025, 1, 15),
                dt.date(2025, 3, 1),
                dt.date(2025, 3, 31),
                None,
                dt.date(2024, 12, 30),
            ]
        ),
        "ts": pa.array(
            [
                dt.datetime(2025, 1, 15, 8, 30),
                dt.datetime(2025, 3, 1, 0, 0),
                dt.datetime(2025, 3, 31, 23, 59, 59),
                dt.datetime(2025, 4, 1, 12, 0),
                None,
            ],
            pa.timestamp("us"),
        ),
        "region": ["north", "x", "South", None, "o'hara"],
        "amount": [10.5, 20.0, None, 7.25, -3.0],
        "units": [1, 2, 3, 4, 5],
        "paid": [True, False, True, None, False],
        "in": ["a", "b", "c", "d", "e"],
    }
)


def kept(text: str) -> list[int]:
    """The ids of the rows a filter keeps, run by DuckDB."""
    compiled = compile_expression(text, SCHEMA, want="boolean")
    con = duckdb.connect()
    con.register("t", ROWS)
    query = f"SELECT id FROM t WHERE {compiled.sql} ORDER BY id"
    return [r[0] for r in con.execute(query, compiled.params).fetchall()]


def value(text: str):
    """The value of an expression on row 1."""
    compiled = compile_expression(text, SCHEMA)
    con = duckdb.connect()
    con.register("t", ROWS)
    return con.execute(f"SELECT {compiled.sql} FROM t WHERE id = 1", compiled.params).fetchone()[0]


@pytest.mark.parametrize(
    "text, ids",
    [
        ("day >= '2025-03-01' and region != 'x'", [3]),
        ("day >= '2025-03-01'", [2, 3]),
        ("'2025-03-01' <= day", [2, 3]),
        ("day = '2025-03-01'", [2]),
        ("day > '2025-03-01T12:00:00'", [3]),
        ("ts >= '2025-03-01'", [2, 3, 4]),
        ("ts < '2025-03-01T03:00:00+02:00'", [1, 2]),
        ("ts < '2025-03-01T00:00:00Z'", [1]),
        ("region in ('north', 'x')", [1, 2]),
        ("region not in ('north', 'x')", [3, 5]),
        ("region is null", [4]),
        ("region is not null and amount is null", [3]),
        ("not paid", [2, 5]),
        ("paid = true or units >= 4", [1, 3, 4, 5]),
        ("not (paid or units = 4)", [2, 5]),
        ("amount * units > 30", [2]),
        ("amount / 2 = 5.25", [1]),
        ("units % 2 = 0", [2, 4]),
        ("-amount > 0", [5]),
        ("amount > -1 and amount < 8", [4]),
        ("year(day) = 2025 and month(day) = 3", [2, 3]),
        ("quarter(day) = 4", [5]),
        ("day_of_week(day) = 1", [3, 5]),  # 2025-03-31 and 2024-12-30 are Mondays
        ("hour(ts) = 23 and minute(ts) = 59 and second(ts) = 59", [3]),
        ("date(ts) = '2025-04-01'", [4]),
        ("lower(region) = 'south'", [3]),
        ("upper(region) = 'NORTH' and length(region) = 5", [1]),
        ("contains(region, 'h')", [1, 3, 5]),
        ("starts_with(region, 'no') or ends_with(region, 'ra')", [1, 5]),
        ("region = 'o''hara'", [5]),
        ('region = "o\'hara"', [5]),
        ("region = 'o\\'hara'", [5]),
        ("abs(amount) = 3", [5]),
        ("round(amount) = 11", [1]),
        ("round(amount, 1) = 7.3", [4]),
        ("coalesce(amount, 0) = 0", [3]),
        ("`in` = 'c'", [3]),
        ("amount >= 1e1", [1, 2]),
        ("id == 1 or id <> 1 and id = 2", [1, 2]),
        ("units > 2.5", [3, 4, 5]),
        ("id in (1, 2.0)", [1, 2]),
        ("units IN (1) OR units Is Null", [1]),
    ],
)
def test_filters_keep_the_right_rows(text, ids):
    assert kept(text) == ids


def test_precedence_and_derived_values():
    assert value("units + 2 * 3") == 7
    assert value("(units + 2) * 3") == 9
    assert value("7 / 2") == 3.5  # division is never integer division
    assert value("amount * units + 1") == 11.5
    assert value("year(day) * 100 + month(day)") == 202501
    assert compile_expression("units * 2", SCHEMA).type == "integer"
    assert compile_expression("units / 2", SCHEMA).type == "number"
    assert compile_expression("lower(region)", SCHEMA).type == "string"


def test_columns_are_listed_once_in_order():
    compiled = compile_expression("amount > 1 and (region = 'x' or amount < units)", SCHEMA)
    assert compiled.columns == ["amount", "region", "units"]


def test_literals_are_parameters_never_sql():
    text = "region = 'x'' OR 1=1; DROP TABLE t; --'"
    compiled = compile_expression(text, SCHEMA, want="boolean")
    assert compiled.sql == '("region" = ?)'
    assert compiled.params == ["x' OR 1=1; DROP TABLE t; --"]
    assert kept(text) == []


@pytest.mark.parametrize(
    "text, position, fragment",
    [
        ("amount >", 8, "Expected a value"),
        ("amount > > 1", 9, "Expected a value"),
        ("amount @ 1", 7, "Unexpected character '@'"),
        ("region = 'x", 9, "not closed"),
        ("`region = 1", 0, "not closed"),
        ("(amount > 1", 11, "Expected ')'"),
        ("amount > 1)", 10, "expected an operator or the end"),
        ("amount > 1 region", 11, "expected an operator"),
        ("1 < units < 3", 10, "cannot be chained"),
        ("region in 'x'", 10, "'(' to start the list"),
        ("region in ('x' 'y')", 15, "',' or ')'"),
        ("region is 'x'", 10, "null after 'is'"),
        ("region is not 3", 14, "null after 'is not'"),
        ("lower(region", 12, "in the arguments of lower()"),
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        ("__import__('os').system('id')", 16, "Unexpected character '.'"),
        ("amount.real > 1", 6, "Unexpected character '.'"),
        ("amount > 99999999999999999999", 9, "too large"),
    ],
)
def test_syntax_errors_name_the_position(text, position, fragment):
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, SCHEMA, want="boolean")
    assert info.value.position == position, str(info.value)
    assert fragment in str(info.value)
    assert info.value.code == "invalid_expression"
    assert f"position {position}" in str(info.value) or "empty" in fragment


@pytest.mark.parametrize(
    "text, position, fragment",
    [
        ("region > 3", 9, "Cannot compare a string with a whole number"),
        ("day > 'soon'", 6, "not an ISO 8601 date"),
        ("day > '2025-13-01'", 6, "not an ISO 8601 date"),
        ("amount = null", 9, "use 'is null'"),
        ("amount", 0, "must be a condition"),
        ("amount + 1", 0, "must be a condition"),
        ("paid and amount", 9, "'and' needs a condition"),
        ("not region", 4, "'not' needs a condition"),
        ("region + 1 > 2", 0, "'+' needs a number; the value at position 0 is a string"),
        ("__import__('os') = 1", 0, "Unknown function __import__()"),
        ("-region = 'x'", 1, "'-' needs"),
        ("hour(day) = 1", 5, "hour() needs a timestamp"),
        ("year(region) = 1", 5, "year() needs a date or a timestamp"),
        ("year(day, 1) = 1", 0, "takes a date or timestamp; it got 2 arguments"),
        ("coalesce(amount) > 1", 0, "it got 1 argument"),
        ("coalesce(amount, region) > 1", 17, "Cannot compare"),
        ("round(amount, units) > 1", 14, "must be a whole number of decimals"),
        ("lower(amount) = 'x'", 6, "lower() needs a string"),
        ("nosuch(amount) > 1", 0, "Unknown function nosuch()"),
        ("region in ('x', 1)", 16, "Cannot compare"),
    ],
)
def test_type_errors_name_the_position(text, position, fragment):
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, SCHEMA, want="boolean")
    assert info.value.position == position, str(info.value)
    assert fragment in str(info.value)


def test_unknown_column_is_named():
    with pytest.raises(ExpressionError) as info:
        compile_expression("amount > 1 and regoin = 'x'", SCHEMA, want="boolean")
    error = info.value
    assert (error.code, error.column, error.position) == ("unknown_column", "regoin", 15)
    assert "'regoin'" in error.message and "region" in error.message


def test_keywords_and_names_are_case_insensitive_only_for_keywords():
    assert kept("region = 'x' OR id = 1") == [1, 2]
    with pytest.raises(ExpressionError, match="Unknown column 'Region'"):
        compile_expression("Region = 'x'", SCHEMA)


def test_limits_bound_the_work():
    with pytest.raises(ExpressionError, match="at most 4096") as info:
        parse("a" * (MAX_LENGTH + 1))
    assert info.value.position == MAX_LENGTH
    with pytest.raises(ExpressionError, match="nests deeper"):
        parse("(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5))
    with pytest.raises(ExpressionError, match="nests deeper"):
        parse("not " * 200 + "paid")
    assert kept("(" * 20 + "id = 1" + ")" * 20) == [1]


@pytest.mark.parametrize("bad", [None, 3, ["a"], {"a": 1}])
def test_only_strings_are_expressions(bad):
    with pytest.raises(ExpressionError, match="must be a string"):
        parse(bad)
