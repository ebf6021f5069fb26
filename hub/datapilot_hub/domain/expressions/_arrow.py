"""A checked expression as a pyarrow compute expression, with SQL's meaning.

For engines that scan Arrow (a ``pyarrow.dataset`` filter, Dask partitions, a table's
``filter``) rather than run SQL. The aggregation engine runs the SQL of :mod:`._sql`;
the tests run both backends on the same rows and check they keep the same ones.

Where pyarrow's defaults differ from SQL, the compiled expression follows SQL: ``and``
and ``or`` are Kleene's (``null or true`` is true), ``x in (...)`` is null when ``x`` is,
``/`` divides as floating point, ``%`` keeps the dividend's sign, a division by zero is
null, integer arithmetic
fails on overflow instead of wrapping, and ``round`` rounds halves away from zero.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ._syntax import Binary, Call, Column, ExpressionError, In, IsNull, Literal, Node, Unary

_PARTS = {
    "year": pc.year,
    "quarter": pc.quarter,
    "month": pc.month,
    "week": pc.iso_week,
    "day": pc.day,
    "day_of_year": pc.day_of_year,
    "hour": pc.hour,
    "minute": pc.minute,
    "second": pc.second,
}
_COMPARE = {
    "=": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}
_ARITHMETIC = {"+": pc.add_checked, "-": pc.subtract_checked, "*": pc.multiply_checked}
_PATTERN = {"contains": pc.match_substring, "starts_with": pc.starts_with}
_PATTERN["ends_with"] = pc.ends_with


def to_arrow(node: Node, schema: pa.Schema | None = None) -> pc.Expression:
    """The pyarrow expression of a checked expression.

    Parameters
    ----------
    node : Node
        An expression typed by :func:`~._check.check`.
    schema : pyarrow.Schema, optional
        The Arrow schema of the data it will run on: a date or timestamp string compared
        with a column takes that column's exact type (a timestamp with a time zone reads
        a string without one as UTC). Without it, timestamps are without zone.

    Raises
    ------
    ExpressionError
        For what pyarrow cannot compute: ``contains``, ``starts_with`` and ``ends_with``
        whose pattern is not a literal.
    """
    return _Compiler(schema).visit(node)


class _Compiler:
    def __init__(self, schema: pa.Schema | None) -> None:
        self.schema = schema

    def visit(self, n: Node, like: Node | None = None) -> Any:
        if isinstance(n, Literal):
            return self.literal(n, like)
        if isinstance(n, Column):
            return pc.field(n.name)
        if isinstance(n, Unary):
            operand = self.visit(n.operand)
            return ~operand if n.op == "not" else pc.negate_checked(operand)
        if isinstance(n, Binary):
            return self.binary(n)
        if isinstance(n, In):
            return self.in_(n)
        if isinstance(n, IsNull):
            operand = self.visit(n.operand)
            return pc.is_valid(operand) if n.negated else pc.is_null(operand)
        if isinstance(n, Call):
            return self.call(n)
        raise TypeError(n)  # pragma: no cover - the checker makes no other node

    def literal(self, n: Literal, like: Node | None) -> Any:
        value = n.value
        if isinstance(value, dt.date):
            # the type of the column it is compared with (a zone, a unit)
            target = self.type_of(like)
            if isinstance(value, dt.datetime):
                if target is None or not pa.types.is_timestamp(target):
                    target = pa.timestamp("us")
                if target.tz is not None:
                    value = value.replace(tzinfo=dt.timezone.utc)
                return pc.scalar(pa.scalar(value, target))
            if target is not None and pa.types.is_timestamp(target):
                # a date compared with a timestamp: its midnight
                return self.literal(
                    Literal(n.pos, dt.datetime.combine(value, dt.time()), type="datetime"), like
                )
            return pc.scalar(pa.scalar(value, pa.date32()))
        return pc.scalar(value)

    def type_of(self, n: Node | None) -> pa.DataType | None:
        """The Arrow type of the first column of ``n`` with a date or timestamp type."""
        if n is None or self.schema is None:
            return None
        if isinstance(n, Column):
            index = self.schema.get_field_index(n.name)
            return self.schema.field(index).type if index >= 0 else None
        for child in _children(n):
            found = self.type_of(child)
            if found is not None and (pa.types.is_timestamp(found) or pa.types.is_date(found)):
                return found
        return None

    def binary(self, n: Binary) -> Any:
        if n.op in ("and", "or"):
            left, right = self.visit(n.left), self.visit(n.right)
            return left & right if n.op == "and" else left | right
        if n.op in _COMPARE:
            left, right = self.visit(n.left, n.right), self.visit(n.right, n.left)
            return _COMPARE[n.op](left, right)
        left, right = self.visit(n.left), self.visit(n.right)
        if n.op in _ARITHMETIC:
            return _ARITHMETIC[n.op](left, right)
        # a division by zero is null, as in the SQL
        if n.op == "/":
            left, right = left.cast(pa.float64()), right.cast(pa.float64())
            return pc.divide(left, _nonzero(right))
        # '%': the remainder of a division truncated towards zero, as SQL's
        divisor = _nonzero(right)
        if n.type == "integer":
            return pc.subtract(left, pc.multiply(pc.divide(left, divisor), divisor))
        left, divisor = left.cast(pa.float64()), divisor.cast(pa.float64())
        return pc.subtract(left, pc.multiply(pc.trunc(pc.divide(left, divisor)), divisor))

    def in_(self, n: In) -> Any:
        operand = self.visit(n.operand)
        if all(isinstance(i, Literal) for i in n.items):
            values = [self.literal(i, n.operand) for i in n.items]  # type: ignore[arg-type]
            equal = values[0] if len(values) == 1 else None
            if equal is not None:
                found = pc.equal(operand, equal)
            else:
                found = _any([pc.equal(operand, v) for v in values])
        else:
            found = _any([pc.equal(operand, self.visit(i, n.operand)) for i in n.items])
        return ~found if n.negated else found

    def call(self, n: Call) -> Any:
        args = n.args
        if n.name in _PARTS:
            return _PARTS[n.name](self.visit(args[0]))
        if n.name == "day_of_week":
            return pc.day_of_week(self.visit(args[0]), count_from_zero=False, week_start=1)
        if n.name == "date":
            return self.visit(args[0]).cast(pa.date32())
        if n.name == "lower":
            return pc.utf8_lower(self.visit(args[0]))
        if n.name == "upper":
            return pc.utf8_upper(self.visit(args[0]))
        if n.name == "length":
            return pc.utf8_length(self.visit(args[0]))
        if n.name in _PATTERN:
            pattern = args[1]
            if not isinstance(pattern, Literal):
                raise ExpressionError(
                    f"{n.name}()'s pattern (position {pattern.pos}) must be a string literal here.",
                    pattern.pos,
                )
            return _PATTERN[n.name](self.visit(args[0]), pattern=pattern.value)
        if n.name == "abs":
            return pc.abs_checked(self.visit(args[0]))
        if n.name == "round":
            digits = args[1].value if len(args) > 1 else 0  # type: ignore[attr-defined]
            value = self.visit(args[0]).cast(pa.float64())
            return pc.round(value, ndigits=digits, round_mode="half_towards_infinity")
        # coalesce
        return pc.coalesce(*[self.visit(a, args[0]) for a in args])


def _nonzero(divisor: Any) -> Any:
    """``divisor``, null where it is 0."""
    return pc.if_else(pc.equal(divisor, 0), pc.scalar(None), divisor)


def _any(parts: list[Any]) -> Any:
    """``a or b or ...`` with Kleene's logic, as a balanced tree (lists can be long)."""
    while len(parts) > 1:
        parts = [
            parts[i] | parts[i + 1] if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    return parts[0]


def _children(n: Node) -> list[Node]:
    if isinstance(n, Unary):
        return [n.operand]
    if isinstance(n, Binary):
        return [n.left, n.right]
    if isinstance(n, In):
        return [n.operand, *n.items]
    if isinstance(n, IsNull):
        return [n.operand]
    if isinstance(n, Call):
        return list(n.args)
    return []
