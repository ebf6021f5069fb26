"""A safe expression language over a dataset's columns: filters, derived columns.

``day >= '2025-03-01' and region not in ('x', 'y') and amount * units > 100`` is parsed
by a real parser (:mod:`._parser`; Python's ``eval`` is never involved), checked against
the dataset's schema (:mod:`._check`: unknown columns and mistyped operands are refused
with their position) and compiled to DuckDB SQL with every literal bound as a parameter
(:mod:`._sql`, what the aggregations run) or to a pyarrow compute expression
(:mod:`._arrow`, for Arrow scans, Dask partitions, ``Table.filter``), both with SQL's
meaning. The language:

- literals: numbers (``3``, ``2.5``, ``1e6``), strings in single or double quotes (a
  backslash escapes, a doubled quote is one), ``true``, ``false``, ``null``;
- columns by name (``region``), or in backquotes when the name is a keyword
  (```in```);
- comparisons ``=`` (or ``==``), ``!=`` (or ``<>``), ``<``, ``<=``, ``>``, ``>=``; an ISO
  8601 string compared with a date or timestamp column is that date or timestamp;
- ``x in (a, b)``, ``x not in (...)``, ``x is null``, ``x is not null``;
- ``and``, ``or``, ``not``, parentheses; arithmetic ``+ - * / %`` and unary ``-``;
- functions: date parts ``year quarter month week day day_of_week day_of_year`` (dates
  and timestamps), ``hour minute second`` (timestamps), ``date(ts)``, ``lower upper
  length contains starts_with ends_with`` (strings), ``abs round`` (numbers),
  ``coalesce``.

Comparisons follow SQL: a comparison with a null value is not true, so
``region != 'x'`` leaves out rows whose region is null; a division by zero is null.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._arrow import to_arrow
from ._check import DATE_PARTS, FUNCTIONS, TIME_PARTS, TYPES, check
from ._parser import MAX_DEPTH, MAX_LENGTH, parse, tokenize
from ._sql import quote_name, to_sql
from ._syntax import ExpressionError, Node, columns_of

__all__ = [
    "DATE_PARTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "TIME_PARTS",
    "TYPES",
    "Compiled",
    "ExpressionError",
    "Node",
    "check",
    "columns_of",
    "compile_expression",
    "parse",
    "quote_name",
    "to_arrow",
    "to_sql",
    "tokenize",
]


@dataclass(frozen=True)
class Compiled:
    """An expression ready to run.

    Parameters
    ----------
    text : str
        The expression as written.
    node : Node
        Its checked syntax tree (shared by every backend).
    type : str
        Its type: one of :data:`TYPES`.
    columns : list of str
        The columns it reads.
    sql : str
        DuckDB SQL, with ``?`` for each parameter.
    params : list
        The literals, in the order of their ``?``.
    """

    text: str
    node: Node
    type: str
    columns: list[str]
    sql: str
    params: list[Any]


def compile_expression(text: str, schema: Mapping[str, str], want: str | None = None) -> Compiled:
    """Parse, check and compile an expression over a dataset's columns.

    Parameters
    ----------
    text : str
        The expression.
    schema : mapping of str to str
        Column name -> logical type (``integer``, ``number``, ``boolean``, ``date``,
        ``datetime``, ``string``).
    want : str, optional
        The type the expression must have: ``"boolean"`` for a filter.

    Raises
    ------
    ExpressionError
        With the ``position`` of the problem (and ``column`` for an unknown column).

    Examples
    --------
    >>> c = compile_expression("amount > 10 and region != 'x'",
    ...                        {"amount": "number", "region": "string"}, want="boolean")
    >>> c.sql, c.params
    ('(("amount" > ?) AND ("region" <> ?))', [10, 'x'])
    """
    node = check(parse(text), schema, want)
    sql, params = to_sql(node)
    assert node.type is not None
    return Compiled(text, node, node.type, columns_of(node), sql, params)
