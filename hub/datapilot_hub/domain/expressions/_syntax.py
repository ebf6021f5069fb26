"""Tokens and the syntax tree of the expression language, each with its position."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ExpressionError(ValueError):
    """An expression outside the language, or one that does not fit the dataset.

    Parameters
    ----------
    message : str
        A sentence for a person, naming the position.
    position : int
        Offset of the offending character in the expression (0 is the first).
    code : str
        ``"invalid_expression"`` for syntax and types, ``"unknown_column"`` for a name
        the dataset does not have.
    column : str, optional
        The unknown column, for ``unknown_column``.
    """

    def __init__(
        self, message: str, position: int, code: str = "invalid_expression", column: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.code = code
        self.column = column


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is ``number``, ``string``, ``name``, ``quoted_name``, ``op``,
    ``keyword`` or ``end``; ``text`` is its source text (a string's value unescaped)."""

    kind: str
    text: str
    pos: int


# -- the syntax tree ------------------------------------------------------------------
# Every node carries the position of its first character, for error messages, and a
# ``type`` that the checker fills in (one of the dataset's logical types, or "null").


@dataclass(frozen=True)
class Node:
    """Base of every node of the tree."""

    pos: int
    type: str | None = field(default=None, kw_only=True, compare=False)


@dataclass(frozen=True)
class Literal(Node):
    """A number, string, boolean or null as written; the checker may give a string the
    value of a date or timestamp it is compared with."""

    value: Any


@dataclass(frozen=True)
class Column(Node):
    """A column of the dataset, by its name."""

    name: str


@dataclass(frozen=True)
class Unary(Node):
    """``not x`` or ``-x``."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    """``and``, ``or``, a comparison (``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``) or
    arithmetic (``+``, ``-``, ``*``, ``/``, ``%``)."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class In(Node):
    """``x in (a, b, ...)``, or ``x not in (...)`` when ``negated``."""

    operand: Node
    items: tuple[Node, ...]
    negated: bool = False


@dataclass(frozen=True)
class IsNull(Node):
    """``x is null``, or ``x is not null`` when ``negated``."""

    operand: Node
    negated: bool = False


@dataclass(frozen=True)
class Call(Node):
    """A function of the language: ``year(day)``, ``lower(region)``..."""

    name: str
    args: tuple[Node, ...]


def columns_of(node: Node) -> list[str]:
    """The column names an expression reads, in order of first appearance.

    Parameters
    ----------
    node : Node
        A parsed expression.
    """
    found: list[str] = []

    def walk(n: Node) -> None:
        if isinstance(n, Column):
            if n.name not in found:
                found.append(n.name)
        elif isinstance(n, Unary):
            walk(n.operand)
        elif isinstance(n, Binary):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, In):
            walk(n.operand)
            for item in n.items:
                walk(item)
        elif isinstance(n, IsNull):
            walk(n.operand)
        elif isinstance(n, Call):
            for arg in n.args:
                walk(arg)

    walk(node)
    return found
