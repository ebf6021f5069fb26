"""A hand-written lexer and precedence-climbing (Pratt) parser for the expression language.

The language is small (a dozen operators, literals, column names and a fixed set of
functions), and what matters most in it is the message when an analyst mistypes: the
position and what was expected there. A parser this size states both directly; a
generated one (lark) would need its errors translated back from grammar terminals.
Nothing here evaluates anything: the result is a syntax tree (:mod:`._syntax`).
"""

from __future__ import annotations

import re

from ._syntax import (
    Binary,
    Call,
    Column,
    ExpressionError,
    In,
    IsNull,
    Literal,
    Node,
    Token,
    Unary,
)

#: The longest expression accepted, in characters.
MAX_LENGTH = 4096
#: The deepest nesting of parentheses, calls and operators accepted.
MAX_DEPTH = 64

KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "true", "false"})
COMPARISONS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">"}
COMPARISONS[">="] = ">="
# binding powers: the higher, the tighter
_BP = {"or": 1, "and": 2, "not": 3, "compare": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}
_NEGATE_BP = 7

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<>|<=|>=|[=<>+\-*/%(),])
    """,
    re.VERBOSE,
)
_INT64 = 2**63


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token.

    Parameters
    ----------
    text : str
        The expression.
    """
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char in "'\"":
            value, pos = _string(text, pos)
            tokens.append(value)
            continue
        if char == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                raise ExpressionError(
                    f"The quoted column name at position {pos} is not closed.", pos
                )
            tokens.append(Token("quoted_name", text[pos + 1 : end], pos))
            pos = end + 1
            continue
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionError(f"Unexpected character {char!r} at position {pos}.", pos)
        kind = match.lastgroup or ""
        word = match.group()
        if kind == "name" and word.lower() in KEYWORDS:
            tokens.append(Token("keyword", word.lower(), pos))
        elif kind != "space":
            tokens.append(Token(kind, word, pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _string(text: str, start: int) -> tuple[Token, int]:
    """A quoted string from ``start``: a backslash escapes the next character, and a
    doubled quote stands for one (as in SQL)."""
    quote = text[start]
    out: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
        elif char == quote:
            if text[pos + 1 : pos + 2] == quote:
                out.append(quote)
                pos += 2
            else:
                return Token("string", "".join(out), start), pos + 1
        else:
            out.append(char)
            pos += 1
    raise ExpressionError(f"The string starting at position {start} is not closed.", start)


def parse(text: str) -> Node:
    """Parse an expression into its syntax tree (no column or type is checked here).

    Parameters
    ----------
    text : str
        The expression, e.g. ``"day >= '2025-03-01' and region != 'x'"``.

    Raises
    ------
    ExpressionError
        When ``text`` is not in the language; its ``position`` says where.
    """
    if not isinstance(text, str):
        raise ExpressionError("An expression must be a string.", 0)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"The expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed.",
            MAX_LENGTH,
        )
    if not text.strip():
        raise ExpressionError("The expression is empty.", 0)
    parser = _Parser(tokenize(text))
    node = parser.expression(0)
    token = parser.peek()
    if token.kind != "end":
        raise ExpressionError(
            f"Unexpected {_shown(token)} at position {token.pos}: expected an operator or"
            " the end of the expression.",
            token.pos,
        )
    return node


def _shown(token: Token) -> str:
    if token.kind == "end":
        return "end of the expression"
    if token.kind == "string":
        return "string"
    return repr(token.text)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.i += 1
        return token

    def is_(self, kind: str, text: str | None = None, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == kind and (text is None or token.text == text)

    def expect(self, kind: str, text: str, what: str) -> Token:
        token = self.peek()
        if not self.is_(kind, text):
            raise ExpressionError(
                f"Expected {what} at position {token.pos}, found {_shown(token)}.", token.pos
            )
        return self.next()

    def expression(self, min_bp: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            token = self.peek()
            raise ExpressionError(
                f"The expression nests deeper than {MAX_DEPTH} levels at position {token.pos}.",
                token.pos,
            )
        try:
            left = self.prefix()
            while True:
                bp, kind = self.infix_power()
                if bp <= min_bp:
                    return left
                left = self.infix(left, kind, bp)
        finally:
            self.depth -= 1

    def infix_power(self) -> tuple[int, str]:
        """The binding power of the operator ahead, and what kind of operator it is."""
        token = self.peek()
        if token.kind == "keyword":
            if token.text in ("and", "or"):
                return _BP[token.text], token.text
            if token.text in ("in", "is") or (token.text == "not" and self.is_("keyword", "in", 1)):
                return _BP["compare"], "compare"
        if token.kind == "op":
            if token.text in COMPARISONS:
                return _BP["compare"], "compare"
            if token.text in "+-*/%":
                return _BP[token.text], "arithmetic"
        return 0, ""

    def infix(self, left: Node, kind: str, bp: int) -> Node:
        token = self.next()
        if kind in ("and", "or"):
            return Binary(left.pos, token.text, left, self.expression(bp))
        if kind == "arithmetic":
            return Binary(left.pos, token.text, left, self.expression(bp))
        if token.text == "is":
            negated = self.is_("keyword", "not")
            if negated:
                self.next()
            self.expect(
                "keyword", "null", "null after 'is'" if not negated else "null after 'is not'"
            )
            node: Node = IsNull(left.pos, left, negated)
        elif token.text in ("in", "not"):
            negated = token.text == "not"
            if negated:
                self.next()  # the 'in'
            node = In(left.pos, left, self.items(), negated)
        else:
            node = Binary(left.pos, COMPARISONS[token.text], left, self.expression(bp))
        if self.infix_power()[1] == "compare":
            ahead = self.peek()
            raise ExpressionError(
                f"Comparisons cannot be chained (position {ahead.pos}); join them with 'and'.",
                ahead.pos,
            )
        return node

    def items(self) -> tuple[Node, ...]:
        """The parenthesised list after ``in``."""
        self.expect("op", "(", "'(' to start the list after 'in'")
        items = [self.expression(0)]
        while self.is_("op", ","):
            self.next()
            items.append(self.expression(0))
        self.expect("op", ")", "',' or ')' in the list after 'in'")
        return tuple(items)

    def prefix(self) -> Node:
        token = self.next()
        if token.kind == "number":
            return Literal(token.pos, _number(token))
        if token.kind == "string":
            return Literal(token.pos, token.text)
        if token.kind == "quoted_name":
            return Column(token.pos, token.text)
        if token.kind == "keyword":
            if token.text in ("true", "false"):
                return Literal(token.pos, token.text == "true")
            if token.text == "null":
                return Literal(token.pos, None)
            if token.text == "not":
                return Unary(token.pos, "not", self.expression(_BP["not"]))
        if token.kind == "op":
            if token.text == "-":
                return Unary(token.pos, "-", self.expression(_NEGATE_BP))
            if token.text == "(":
                inner = self.expression(0)
                self.expect("op", ")", "')'")
                return inner
        if token.kind == "name":
            if self.is_("op", "("):
                self.next()
                args: list[Node] = []
                if not self.is_("op", ")"):
                    args.append(self.expression(0))
                    while self.is_("op", ","):
                        self.next()
                        args.append(self.expression(0))
                self.expect("op", ")", f"',' or ')' in the arguments of {token.text}()")
                return Call(token.pos, token.text.lower(), tuple(args))
            return Column(token.pos, token.text)
        raise ExpressionError(
            f"Expected a value (a column, a literal, a function or '(') at position"
            f" {token.pos}, found {_shown(token)}.",
            token.pos,
        )


def _number(token: Token) -> int | float:
    text = token.text
    if any(c in text for c in ".eE"):
        value = float(text)
        if value != value or value in (float("inf"), float("-inf")):
            raise ExpressionError(f"The number at position {token.pos} is too large.", token.pos)
        return value
    number = int(text)
    if number >= _INT64:
        raise ExpressionError(f"The number at position {token.pos} is too large.", token.pos)
    return number
