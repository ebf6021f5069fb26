"""Names and types: an expression checked against a dataset's schema.

The checker resolves every column against the schema (an unknown one is an error that
names it), gives every node its type, and turns a string compared with a date or a
timestamp into that date or timestamp (ISO 8601), so ``day >= '2025-03-01'`` compares
dates, not text. Types are the datasets' logical types: ``integer``, ``number``,
``boolean``, ``date``, ``datetime``, ``string``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace

from ._syntax import (
    Binary,
    Call,
    Column,
    ExpressionError,
    In,
    IsNull,
    Literal,
    Node,
    Unary,
)

NUMERIC = frozenset({"integer", "number"})
TEMPORAL = frozenset({"date", "datetime"})
TYPES = ("integer", "number", "boolean", "date", "datetime", "string")

#: Date parts: of a date or a timestamp, an integer. ``week`` is the ISO week,
#: ``day_of_week`` 1 (Monday) to 7 (Sunday).
DATE_PARTS = ("year", "quarter", "month", "week", "day", "day_of_week", "day_of_year")
#: Time parts: of a timestamp, an integer.
TIME_PARTS = ("hour", "minute", "second")

#: Every function: name -> (what its arguments must be, for messages; result type rule).
FUNCTIONS: dict[str, str] = {
    **{name: "a date or timestamp" for name in DATE_PARTS},
    **{name: "a timestamp" for name in TIME_PARTS},
    "date": "a date or timestamp (the timestamp's date)",
    "lower": "a string",
    "upper": "a string",
    "length": "a string (its number of characters)",
    "contains": "a string and a string",
    "starts_with": "a string and a string",
    "ends_with": "a string and a string",
    "abs": "a number",
    "round": "a number, and optionally how many decimals (a whole number)",
    "coalesce": "two or more values of one type (the first that is not null)",
}


def literal_type(value: object) -> str:
    """The type of a literal's value (``"null"`` for None).

    Parameters
    ----------
    value : object
        A parsed literal's value, or one the checker gave it.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    return "string"


def check(node: Node, schema: Mapping[str, str], want: str | None = None) -> Node:
    """The expression with every node typed and date strings turned into dates.

    Parameters
    ----------
    node : Node
        A parsed expression.
    schema : mapping of str to str
        Column name -> logical type.
    want : str, optional
        The type the whole expression must have (``"boolean"`` for a filter).

    Raises
    ------
    ExpressionError
        For an unknown column (``code="unknown_column"``), a function that does not
        exist or gets the wrong arguments, or operands of the wrong type.
    """
    typed = _Checker(schema).visit(node)
    if want is not None and typed.type != want:
        raise ExpressionError(
            f"The expression must be a condition (true or false), but it is"
            f" {_a(typed.type)}; compare it with something, e.g. 'x > 0'.",
            typed.pos,
        )
    return typed


def _a(type_: str | None) -> str:
    return {
        "integer": "a whole number",
        "number": "a number",
        "boolean": "a condition",
        "date": "a date",
        "datetime": "a timestamp",
        "string": "a string",
        "null": "null",
    }.get(type_ or "", str(type_))


class _Checker:
    def __init__(self, schema: Mapping[str, str]) -> None:
        self.schema = schema

    def visit(self, node: Node) -> Node:
        if isinstance(node, Literal):
            return replace(node, type=literal_type(node.value))
        if isinstance(node, Column):
            if node.name not in self.schema:
                known = ", ".join(list(self.schema)[:30])
                raise ExpressionError(
                    f"Unknown column {node.name!r} at position {node.pos}; the dataset's"
                    f" columns are: {known}.",
                    node.pos,
                    code="unknown_column",
                    column=node.name,
                )
            return replace(node, type=self.schema[node.name])
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, In):
            operand = self.visit(node.operand)
            items = tuple(self.comparable(operand, self.visit(i), "in") for i in node.items)
            return replace(node, operand=operand, items=items, type="boolean")
        if isinstance(node, IsNull):
            return replace(node, operand=self.visit(node.operand), type="boolean")
        if isinstance(node, Call):
            return self.call(node)
        raise TypeError(node)  # pragma: no cover - the parser makes no other node

    def unary(self, node: Unary) -> Node:
        operand = self.visit(node.operand)
        if node.op == "not":
            self.need(operand, {"boolean"}, "'not'")
            return replace(node, operand=operand, type="boolean")
        self.need(operand, NUMERIC, "'-'")
        return replace(node, operand=operand, type=operand.type)

    def binary(self, node: Binary) -> Node:
        left, right = self.visit(node.left), self.visit(node.right)
        if node.op in ("and", "or"):
            self.need(left, {"boolean"}, f"'{node.op}'")
            self.need(right, {"boolean"}, f"'{node.op}'")
            return replace(node, left=left, right=right, type="boolean")
        if node.op in ("+", "-", "*", "/", "%"):
            self.need(left, NUMERIC, f"'{node.op}'")
            self.need(right, NUMERIC, f"'{node.op}'")
            whole = left.type == right.type == "integer" and node.op != "/"
            return replace(node, left=left, right=right, type="integer" if whole else "number")
        # a comparison: a date string on either side takes the other side's type
        if isinstance(left, Literal) and not isinstance(right, Literal):
            left = self.comparable(right, left, node.op)
        else:
            right = self.comparable(left, right, node.op)
        return replace(node, left=left, right=right, type="boolean")

    def comparable(self, subject: Node, other: Node, op: str) -> Node:
        """``other`` as compared with ``subject``: converted when it is a date string."""
        a, b = subject.type, other.type
        if "null" in (a, b):
            null = other if b == "null" else subject
            raise ExpressionError(
                f"Nothing equals null (position {null.pos}): use 'is null' or 'is not null'.",
                null.pos,
            )
        if a in TEMPORAL and b == "string" and isinstance(other, Literal):
            return self.visit(replace(other, value=_temporal(other, a)))
        if a == b or (a in NUMERIC and b in NUMERIC) or (a in TEMPORAL and b in TEMPORAL):
            return other
        raise ExpressionError(
            f"Cannot compare {_a(a)} with {_a(b)} ('{op}' at position {other.pos}).",
            other.pos,
        )

    def call(self, node: Call) -> Node:
        if node.name not in FUNCTIONS:
            raise ExpressionError(
                f"Unknown function {node.name}() at position {node.pos}; the functions are:"
                f" {', '.join(FUNCTIONS)}.",
                node.pos,
            )
        args = tuple(self.visit(a) for a in node.args)
        name, result = node.name, None
        if name in DATE_PARTS or name in TIME_PARTS or name == "date":
            self.arity(node, args, 1)
            self.need(args[0], {"datetime"} if name in TIME_PARTS else TEMPORAL, f"{name}()")
            result = "date" if name == "date" else "integer"
        elif name in ("lower", "upper", "length"):
            self.arity(node, args, 1)
            self.need(args[0], {"string"}, f"{name}()")
            result = "integer" if name == "length" else "string"
        elif name in ("contains", "starts_with", "ends_with"):
            self.arity(node, args, 2)
            for arg in args:
                self.need(arg, {"string"}, f"{name}()")
            result = "boolean"
        elif name == "abs":
            self.arity(node, args, 1)
            self.need(args[0], NUMERIC, "abs()")
            result = args[0].type
        elif name == "round":
            if len(args) not in (1, 2):
                self.arity(node, args, 1)
            self.need(args[0], NUMERIC, "round()")
            if len(args) == 2 and not (isinstance(args[1], Literal) and args[1].type == "integer"):
                raise ExpressionError(
                    f"round()'s second argument (position {args[1].pos}) must be a whole"
                    " number of decimals, written as a literal.",
                    args[1].pos,
                )
            result = "number"
        else:  # coalesce
            if len(args) < 2:
                self.arity(node, args, 2)
            first = args[0]
            args = (first,) + tuple(self.comparable(first, a, "coalesce") for a in args[1:])
            result = first.type
        return replace(node, args=args, type=result)

    def arity(self, node: Call, args: tuple[Node, ...], n: int) -> None:
        if len(args) != n:
            raise ExpressionError(
                f"{node.name}() at position {node.pos} takes {FUNCTIONS[node.name]}; it got"
                f" {len(args)} argument{'s' if len(args) != 1 else ''}.",
                node.pos,
            )

    def need(self, node: Node, types: set[str] | frozenset[str], where: str) -> None:
        if node.type not in types:
            wanted = "a number" if types == NUMERIC else " or ".join(_a(t) for t in sorted(types))
            raise ExpressionError(
                f"{where} needs {wanted}; the value at position {node.pos} is {_a(node.type)}.",
                node.pos,
            )


def _temporal(literal: Literal, kind: str) -> dt.date | dt.datetime:
    """An ISO 8601 date or timestamp string as a date (for a date compared with a plain
    date) or a timestamp (UTC, without zone, when it names one)."""
    text = str(literal.value).strip()
    try:
        if kind == "date" and len(text) == 10:
            return dt.date.fromisoformat(text)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ExpressionError(
            f"{literal.value!r} at position {literal.pos} is not an ISO 8601 date or"
            " timestamp (like '2025-03-01' or '2025-03-01T14:30:00').",
            literal.pos,
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value
