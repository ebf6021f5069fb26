"""The expression language: parsing, positions of errors, types, and what it means: each
filter runs in DuckDB (the SQL) and in pyarrow (the compute expression) on the same small
table, and both must keep the same rows."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from datapilot_hub.domain.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    ExpressionError,
    compile_expression,
    parse,
    to_arrow,
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
    "tsz": "datetime",  # with a time zone
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
        "tsz": pa.array(
            [
                dt.datetime(2025, 1, 1, 23, 30, tzinfo=dt.timezone.utc),
                dt.datetime(2025, 1, 2, 0, 30, tzinfo=dt.timezone.utc),
                None,
                dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc),
                dt.datetime(2024, 12, 31, 12, tzinfo=dt.timezone.utc),
            ],
            pa.timestamp("us", tz="UTC"),
        ),
    }
)


def duckdb_connection():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # as the aggregation engine
    con.register("t", ROWS)
    return con


def kept(text: str) -> list[int]:
    """The ids of the rows a filter keeps: the same in DuckDB and in pyarrow."""
    compiled = compile_expression(text, SCHEMA, want="boolean")
    query = f"SELECT id FROM t WHERE {compiled.sql} ORDER BY id"
    by_sql = [r[0] for r in duckdb_connection().execute(query, compiled.params).fetchall()]
    by_arrow = ROWS.filter(to_arrow(compiled.node, ROWS.schema)).column("id").to_pylist()
    assert by_arrow == by_sql, (text, by_sql, by_arrow)
    return by_sql


def value(text: str, row: int = 1):
    """The value of an expression on a row: the same in DuckDB and in pyarrow."""
    compiled = compile_expression(text, SCHEMA)
    query = f"SELECT {compiled.sql} FROM t WHERE id = {row}"
    by_sql = duckdb_connection().execute(query, compiled.params).fetchone()[0]
    by_arrow = (
        pads.dataset(ROWS)
        .to_table(
            columns={"v": to_arrow(compiled.node, ROWS.schema)}, filter=pads.field("id") == row
        )
        .column("v")
        .to_pylist()[0]
    )
    assert by_arrow == by_sql, (text, by_sql, by_arrow)
    return by_sql


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
        # null logic: a null region is neither in nor out of a list
        ("not (region in ('north', 'x'))", [3, 5]),
        ("paid or region is null", [1, 3, 4]),
        ("not (paid and units > 3)", [1, 2, 3, 5]),
        # timestamps with a zone, compared with strings with or without one (UTC)
        ("tsz >= '2025-01-02'", [2, 4]),
        ("tsz < '2025-01-02T01:30:00+01:00'", [1, 5]),
        ("date(tsz) = '2025-01-01'", [1]),
        ("tsz > day", [5]),
        ("hour(tsz) = 23", [1]),
        # division and remainder by zero are null; remainders keep the dividend's sign
        ("units / (units - 2) > 1", [3, 4, 5]),
        ("(units - 2) % 0 is null", [1, 2, 3, 4, 5]),
        ("-units % 3 = -1", [1, 4]),
        ("amount % 4 = 2.5", [1]),
        ("id in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13) and id not in (2, 4)", [1, 3, 5]),
        ("region in (lower(region), 'x')", [1, 2, 5]),
    ],
)
def test_filters_keep_the_right_rows(text, ids):
    assert kept(text) == ids


def test_rounding_and_arithmetic_agree():
    assert value("round(2.5)") == 3.0
    assert value("round(-2.5)") == -3.0
    assert value("round(amount, 0)") == 11.0  # 10.5, half away from zero
    assert value("7 % 2") == 1 and value("-7 % 2") == -1 and value("7 % -2") == 1
    assert value("units / 0") is None
    assert value("abs(-units)") == 1


def test_integer_overflow_is_an_error_in_both_backends():
    """Never a wrapped-around number."""
    compiled = compile_expression("units * 9223372036854775807", SCHEMA)
    with pytest.raises(duckdb.OutOfRangeException, match="Overflow"):
        duckdb_connection().execute(
            f"SELECT {compiled.sql} FROM t WHERE id = 2", compiled.params
        ).fetchall()
    with pytest.raises(pa.ArrowInvalid, match="overflow"):
        pads.dataset(ROWS).to_table(
            columns={"v": to_arrow(compiled.node)}, filter=pads.field("id") == 2
        )


def test_arrow_needs_literal_patterns():
    compiled = compile_expression("contains(region, `in`)", SCHEMA, want="boolean")
    with pytest.raises(ExpressionError, match="pattern .position 17. must be a string literal"):
        to_arrow(compiled.node)


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
