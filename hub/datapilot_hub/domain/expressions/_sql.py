"""A checked expression as DuckDB SQL: identifiers quoted, every literal a parameter.

No text the caller wrote reaches the SQL: column names are the schema's (quoted), the
functions and operators come from fixed tables, and every literal is bound as a
parameter (``?``), so an expression cannot inject SQL.
"""

from __future__ import annotations

from typing import Any

from ._syntax import Binary, Call, Column, In, IsNull, Literal, Node, Unary

_FUNCTIONS = {
    "year": "year",
    "quarter": "quarter",
    "month": "month",
    "week": "week",
    "day": "day",
    "day_of_week": "isodow",
    "day_of_year": "dayofyear",
    "hour": "hour",
    "minute": "minute",
    "second": "second",
    "lower": "lower",
    "upper": "upper",
    "length": "length",
    "contains": "contains",
    "starts_with": "starts_with",
    "ends_with": "ends_with",
    "abs": "abs",
    "round": "round",
    "coalesce": "coalesce",
}
_OPERATORS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_OPERATORS.update({op: op for op in ("+", "-", "*", "/", "%")})
_OPERATORS.update({"and": "AND", "or": "OR"})


def quote_name(name: str) -> str:
    """A column name as a DuckDB identifier.

    Parameters
    ----------
    name : str
        The column's name (from the schema).
    """
    return '"' + name.replace('"', '""') + '"'


def to_sql(node: Node) -> tuple[str, list[Any]]:
    """The SQL of a checked expression and its parameters, in the order of their ``?``.

    Parameters
    ----------
    node : Node
        An expression typed by :func:`~._check.check`.
    """
    params: list[Any] = []

    def sql(n: Node) -> str:
        if isinstance(n, Literal):
            params.append(n.value)
            return "?"
        if isinstance(n, Column):
            return quote_name(n.name)
        if isinstance(n, Unary):
            return f"(NOT {sql(n.operand)})" if n.op == "not" else f"(-{sql(n.operand)})"
        if isinstance(n, Binary):
            if n.op in ("/", "%"):
                # a division by zero is null (DuckDB would fail the whole query)
                return f"({sql(n.left)} {n.op} NULLIF({sql(n.right)}, 0))"
            return f"({sql(n.left)} {_OPERATORS[n.op]} {sql(n.right)})"
        if isinstance(n, In):
            operand = sql(n.operand)
            items = ", ".join(sql(i) for i in n.items)
            return f"({operand} {'NOT IN' if n.negated else 'IN'} ({items}))"
        if isinstance(n, IsNull):
            return f"({sql(n.operand)} IS {'NOT NULL' if n.negated else 'NULL'})"
        if isinstance(n, Call):
            if n.name == "date":
                return f"CAST({sql(n.args[0])} AS DATE)"
            return f"{_FUNCTIONS[n.name]}({', '.join(sql(a) for a in n.args)})"
        raise TypeError(n)  # pragma: no cover - the checker makes no other node

    return sql(node), params
