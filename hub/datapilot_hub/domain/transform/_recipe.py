"""A recipe's steps, checked against the source's schema before anything runs.

Every step is checked in order against the schema the steps before it leave (column
names and logical types), so a recipe that would fail on its third step is refused
before a job exists: a 400 whose ``details`` name the step (``{"step": 2, "op":
"filter", ...}``) and the problem. Expressions (``filter``, ``derive``) are the
language of :mod:`datapilot_hub.domain.expressions`, checked by its checker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import DatapilotError
from ..expressions import ExpressionError, Node, check, parse

TYPES = ("integer", "number", "boolean", "date", "datetime", "string")
NUMERIC = ("integer", "number")
MAX_STEPS = 100
#: group_by's functions, and the logical type each gives (None: the column's own)
AGGREGATES: dict[str, str | None] = {
    "count": "integer",
    "count_distinct": "integer",
    "sum": None,
    "mean": "number",
    "min": None,
    "max": None,
}
JOINS = ("inner", "left", "right", "outer")
CASES = ("lower", "upper", "title")
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

#: Every op, with its fields: (required, optional).
OPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "select": (("columns",), ()),
    "drop": (("columns",), ()),
    "rename": (("columns",), ()),
    "cast": (("columns",), ()),
    "fill_null": (("columns",), ()),
    "drop_null": ((), ("columns", "how")),
    "trim": (("columns",), ()),
    "case": (("columns", "to"), ()),
    "standardize": (("columns",), ("case",)),
    "map_values": (("column", "mapping"), ("default",)),
    "parse_dates": (("columns",), ("format", "dayfirst", "to")),
    "deduplicate": ((), ("keys",)),
    "filter": (("expr",), ()),
    "derive": (("name", "expr"), ()),
    "group_by": (("by", "aggs"), ()),
    "join": (("with", "on"), ("how", "version")),
    "pivot": (("index", "columns", "values", "keys"), ("agg",)),
    "unpivot": (("index", "columns"), ("name", "value")),
    "sort": (("by",), ("descending",)),
    "sample": (("fraction",), ("seed",)),
}

Schema = dict[str, str]
#: (dataset name, version or None) -> {"name", "version", "schema", ...}; raises 404
Resolver = Callable[[str, "int | None"], dict[str, Any]]


class StepError(DatapilotError):
    """A 400 naming the step and what is wrong with it."""

    def __init__(self, index: int, op: Any, message: str, **details: Any) -> None:
        what = f"Step {index}" + (f" ({op})" if isinstance(op, str) and op in OPS else "")
        super().__init__(
            400,
            details.pop("code", "invalid_step"),
            f"{what}: {message}",
            step=index,
            op=op if isinstance(op, str) else None,
            **details,
        )


@dataclass
class Step:
    """One checked step: its op, its fields as sent, and what the checks worked out.

    Parameters
    ----------
    index : int
        Its place in the recipe (0 first).
    op : str
        One of :data:`OPS`.
    args : dict
        The step's fields as sent (the recipe's JSON).
    before, after : dict of str to str
        The schema (column -> logical type) the step sees, and the one it leaves.
    node : Node, optional
        ``filter`` and ``derive``: the checked expression.
    other : dict, optional
        ``join``: the other dataset's version (``name``, ``version``, ``path``, ``schema``).
    """

    index: int
    op: str
    args: dict[str, Any]
    before: Schema
    after: Schema
    node: Node | None = None
    other: dict[str, Any] | None = None


@dataclass
class Recipe:
    """A checked recipe: its steps and the schema it produces."""

    steps: list[Step]
    schema: Schema
    sources: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        """The steps as sent."""
        return [dict(s.args) for s in self.steps]


def check_recipe(steps: Any, schema: Mapping[str, str], resolve: Resolver | None = None) -> Recipe:
    """Check every step against the schema the ones before it leave.

    Parameters
    ----------
    steps : list of dict
        The recipe: each step an object with an ``op``.
    schema : mapping of str to str
        The source version's columns and logical types, in order.
    resolve : callable, optional
        ``resolve(name, version)`` gives another dataset of the same organization (for
        ``join``); it raises the 404 of a dataset the caller cannot see.

    Raises
    ------
    DatapilotError
        400 ``invalid_step`` (or ``unknown_column``, ``invalid_expression``) whose
        details name the ``step``; 400 ``invalid_input`` (field ``steps``) for a recipe
        that is not a list of steps.
    """
    if not isinstance(steps, list) or not steps:
        raise DatapilotError(
            400, "invalid_input", "steps must be a non-empty list of steps.", field="steps"
        )
    if len(steps) > MAX_STEPS:
        raise DatapilotError(
            400,
            "invalid_input",
            f"A recipe has at most {MAX_STEPS} steps; this one has {len(steps)}.",
            field="steps",
        )
    current: Schema = dict(schema)
    checked: list[Step] = []
    for i, raw in enumerate(steps):
        step = _check_step(i, raw, current, resolve)
        checked.append(step)
        current = step.after
        if not current:
            raise StepError(i, step.op, "no column is left after this step.")
    return Recipe(checked, current)


def _check_step(i: int, raw: Any, schema: Schema, resolve: Resolver | None) -> Step:
    if not isinstance(raw, dict):
        raise StepError(i, None, "a step must be an object with an 'op'.")
    op = raw.get("op")
    if op not in OPS:
        raise StepError(
            i, op, f"unknown op {op!r}; one of {', '.join(OPS)}.", field="op", code="unknown_op"
        )
    required, optional = OPS[op]
    for name in required:
        if name not in raw:
            raise StepError(i, op, f"'{name}' is required.", field=name)
    extra = sorted(set(raw) - {"op", *required, *optional})
    if extra:
        raise StepError(
            i, op, f"unknown field(s) {', '.join(extra)}.", field=extra[0], allowed=list(required)
        )
    c = _Checker(i, op, raw, schema)
    after = getattr(c, f"op_{op}")(resolve) if op == "join" else getattr(c, f"op_{op}")()
    return Step(i, op, dict(raw), dict(schema), after, c.node, c.other)


class _Checker:
    """The checks of one step: each ``op_<name>`` returns the schema the step leaves."""

    def __init__(self, index: int, op: str, raw: dict[str, Any], schema: Schema) -> None:
        self.index, self.op, self.raw, self.schema = index, op, raw, schema
        self.node: Node | None = None
        self.other: dict[str, Any] | None = None

    # ---- helpers -------------------------------------------------------------------

    def fail(self, message: str, **details: Any) -> StepError:
        return StepError(self.index, self.op, message, **details)

    def column(self, name: Any, fld: str, schema: Schema | None = None) -> str:
        schema = self.schema if schema is None else schema
        if not isinstance(name, str) or not name:
            raise self.fail(f"'{fld}' must name a column.", field=fld)
        if name not in schema:
            known = ", ".join(list(schema)[:30])
            raise self.fail(
                f"unknown column {name!r} in '{fld}'; the columns here are: {known}.",
                field=fld,
                column=name,
                code="unknown_column",
            )
        return name

    def columns(self, fld: str, value: Any = None, allow_empty: bool = False) -> list[str]:
        value = self.raw.get(fld) if value is None else value
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or (not value and not allow_empty):
            raise self.fail(f"'{fld}' must be a non-empty list of column names.", field=fld)
        names = [self.column(v, fld) for v in value]
        if len(set(names)) != len(names):
            raise self.fail(f"'{fld}' names a column twice.", field=fld)
        return names

    def mapping(self, fld: str) -> dict[str, Any]:
        value = self.raw.get(fld)
        if not isinstance(value, dict) or not value:
            raise self.fail(f"'{fld}' must be a non-empty object.", field=fld)
        return value

    def new_name(self, name: Any, fld: str) -> str:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise self.fail(
                f"{name!r} in '{fld}' is not a column name: lowercase letters, digits and"
                " '_', starting with a letter or '_', at most 63 characters.",
                field=fld,
            )
        return name

    def of_type(self, name: str, types: tuple[str, ...], fld: str) -> None:
        if self.schema[name] not in types:
            raise self.fail(
                f"column {name!r} is {self.schema[name]}; '{fld}' needs {' or '.join(types)}.",
                field=fld,
                column=name,
            )

    def value_for(self, value: Any, type_: str, fld: str) -> None:
        """A JSON value that fits a column of ``type_`` (dates as ISO strings)."""
        ok = {
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "string": isinstance(value, str),
        }.get(type_)
        if type_ in ("date", "datetime"):
            ok = isinstance(value, str) and _iso(value, type_)
        if not ok:
            raise self.fail(f"{value!r} in '{fld}' is not a value of a {type_} column.", field=fld)

    def expression(self, want: str | None) -> Node:
        text = self.raw.get("expr")
        try:
            return check(parse(text), self.schema, want)
        except ExpressionError as e:
            raise self.fail(
                e.message,
                field="expr",
                position=e.position,
                code=e.code,
                **({"column": e.column} if e.column else {}),
            ) from None

    def flag(self, fld: str, default: bool) -> bool:
        value = self.raw.get(fld, default)
        if not isinstance(value, bool):
            raise self.fail(f"'{fld}' must be true or false.", field=fld)
        return value

    def choice(self, fld: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.raw.get(fld, default)
        if value not in choices:
            raise self.fail(f"'{fld}' must be one of {', '.join(choices)}.", field=fld)
        return value

    # ---- the ops -------------------------------------------------------------------

    def op_select(self) -> Schema:
        return {c: self.schema[c] for c in self.columns("columns")}

    def op_drop(self) -> Schema:
        gone = set(self.columns("columns"))
        return {c: t for c, t in self.schema.items() if c not in gone}

    def op_rename(self) -> Schema:
        renames = self.mapping("columns")
        for old, new in renames.items():
            self.column(old, "columns")
            self.new_name(new, f"columns.{old}")
        out = {renames.get(c, c): t for c, t in self.schema.items()}
        if len(out) != len(self.schema):
            raise self.fail("two columns would have the same name.", field="columns")
        return out

    def op_cast(self) -> Schema:
        casts = self.mapping("columns")
        out = dict(self.schema)
        for name, type_ in casts.items():
            self.column(name, "columns")
            if type_ not in TYPES:
                raise self.fail(
                    f"cannot cast {name!r} to {type_!r}; one of {', '.join(TYPES)}.",
                    field=f"columns.{name}",
                )
            source = self.schema[name]
            if not _castable(source, type_):
                raise self.fail(
                    f"cannot cast {name!r} from {source} to {type_}.",
                    field=f"columns.{name}",
                    column=name,
                )
            out[name] = type_
        return out

    def op_fill_null(self) -> Schema:
        for name, value in self.mapping("columns").items():
            self.column(name, "columns")
            self.value_for(value, self.schema[name], f"columns.{name}")
        return dict(self.schema)

    def op_drop_null(self) -> Schema:
        if "columns" in self.raw:
            self.columns("columns")
        self.choice("how", ("any", "all"), "any")
        return dict(self.schema)

    def _text_columns(self) -> None:
        for name in self.columns("columns"):
            self.of_type(name, ("string",), "columns")

    def op_trim(self) -> Schema:
        self._text_columns()
        return dict(self.schema)

    def op_case(self) -> Schema:
        self._text_columns()
        self.choice("to", CASES)
        return dict(self.schema)

    def op_standardize(self) -> Schema:
        self._text_columns()
        if "case" in self.raw:
            self.choice("case", CASES)
        return dict(self.schema)

    def op_map_values(self) -> Schema:
        name = self.column(self.raw["column"], "column")
        self.of_type(name, ("string",), "column")
        for key, value in self.mapping("mapping").items():
            if value is not None and not isinstance(value, str):
                raise self.fail(f"mapping.{key} must be a string or null.", field=f"mapping.{key}")
        default = self.raw.get("default")
        if default is not None and not isinstance(default, str):
            raise self.fail("'default' must be a string or null.", field="default")
        return dict(self.schema)

    def op_parse_dates(self) -> Schema:
        to = self.choice("to", ("date", "datetime"), "date")
        fmt = self.raw.get("format")
        if fmt is not None and (not isinstance(fmt, str) or "%" not in fmt or len(fmt) > 100):
            raise self.fail(
                "'format' must be a strftime pattern such as '%d/%m/%Y'.", field="format"
            )
        self.flag("dayfirst", False)
        out = dict(self.schema)
        for name in self.columns("columns"):
            self.of_type(name, ("string",), "columns")
            out[name] = to
        return out

    def op_deduplicate(self) -> Schema:
        if "keys" in self.raw:
            self.columns("keys")
        return dict(self.schema)

    def op_filter(self) -> Schema:
        self.node = self.expression("boolean")
        return dict(self.schema)

    def op_derive(self) -> Schema:
        name = self.new_name(self.raw["name"], "name")
        self.node = self.expression(None)
        if self.node.type not in TYPES:
            raise self.fail("the expression is always null; give it a type.", field="expr")
        out = dict(self.schema)
        out[name] = self.node.type
        return out

    def op_group_by(self) -> Schema:
        by = self.columns("by")
        out = {c: self.schema[c] for c in by}
        for name, funcs in self.mapping("aggs").items():
            fld = f"aggs.{name}"
            if name != "*":
                self.column(name, "aggs")
            if isinstance(funcs, str):
                funcs = [funcs]
            if not isinstance(funcs, list) or not funcs:
                raise self.fail(f"'{fld}' must be a list of functions.", field=fld)
            for func in funcs:
                if func not in AGGREGATES or (name == "*" and func != "count"):
                    allowed = "count" if name == "*" else ", ".join(AGGREGATES)
                    raise self.fail(f"{func!r} in '{fld}': one of {allowed}.", field=fld)
                if func in ("sum", "mean") and self.schema[name] not in NUMERIC:
                    raise self.fail(
                        f"{func} of {name!r} ({self.schema[name]}) needs a number column.",
                        field=fld,
                        column=name,
                    )
                if name != "*" and self.schema[name] == "boolean" and func in ("min", "max"):
                    raise self.fail(f"{func} of a boolean column: use count.", field=fld)
                result = "count" if name == "*" else f"{name}_{func}"
                if result in out:
                    raise self.fail(f"two columns would be named {result!r}.", field=fld)
                own = self.schema.get(name, "integer")
                out[result] = AGGREGATES[func] or (
                    "number" if func == "sum" and own == "number" else own
                )
        return out

    def op_join(self, resolve: Resolver | None) -> Schema:
        other_name = self.raw["with"]
        if not isinstance(other_name, str):
            raise self.fail("'with' must name a dataset.", field="with")
        version = self.raw.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise self.fail("'version' must be a version number.", field="version")
        if resolve is None:
            raise self.fail("joins are not available here.", field="with")
        try:
            other = resolve(other_name, version)
        except DatapilotError as e:
            # the dataset's own 404 (the same for another organization's), naming the step
            raise DatapilotError(
                e.status,
                e.code,
                f"Step {self.index} (join): {e.message}",
                **{**e.details, "step": self.index, "op": "join", "field": "with"},
            ) from None
        self.other = other
        right: Schema = other["schema"]
        self.choice("how", JOINS, "inner")
        on = self.columns("on")
        for key in on:
            self.column(key, "on", right)
            if _family(self.schema[key]) != _family(right[key]):
                raise self.fail(
                    f"cannot join {key!r}: {self.schema[key]} here, {right[key]} in"
                    f" {other_name!r}.",
                    field="on",
                    column=key,
                )
        out = dict(self.schema)
        for name, type_ in right.items():
            if name in on:
                continue
            new = name if name not in out else f"{name}_{other_name}"[:63]
            if new in out:
                raise self.fail(f"two columns would be named {new!r}.", field="with")
            out[new] = type_
        return out

    def op_pivot(self) -> Schema:
        index = self.columns("index")
        pivot = self.column(self.raw["columns"], "columns")
        values = self.column(self.raw["values"], "values")
        agg = self.choice("agg", tuple(AGGREGATES), "sum")
        if agg in ("sum", "mean"):
            self.of_type(values, NUMERIC, "values")
        if pivot in index or values in index or pivot == values:
            raise self.fail("index, columns and values must be different columns.")
        keys = self.raw["keys"]
        if not isinstance(keys, list) or not keys or len(keys) > 500:
            raise self.fail(
                "'keys' must list the values of the pivot column that become columns (1 to 500).",
                field="keys",
            )
        for k in keys:
            self.value_for(k, self.schema[pivot], "keys")
        type_ = AGGREGATES[agg] or self.schema[values]
        out = {c: self.schema[c] for c in index}
        for name in pivot_names(keys):
            if name in out:
                raise self.fail(f"two columns would be named {name!r}.", field="keys")
            out[name] = type_
        return out

    def op_unpivot(self) -> Schema:
        index = self.columns("index")
        melted = self.columns("columns")
        if set(index) & set(melted):
            raise self.fail("a column cannot be both in 'index' and in 'columns'.")
        types = {self.schema[c] for c in melted}
        if len(types) > 1 and not types <= set(NUMERIC):
            raise self.fail(
                "the unpivoted columns must have one type (or all be numbers); they are "
                + ", ".join(sorted(types))
                + ".",
                field="columns",
            )
        name = self.new_name(self.raw.get("name", "variable"), "name")
        value = self.new_name(self.raw.get("value", "value"), "value")
        out = {c: self.schema[c] for c in index}
        if name in out or value in out or name == value:
            raise self.fail("'name' and 'value' must be new, different column names.")
        out[name] = "string"
        out[value] = types.pop() if len(types) == 1 else "number"
        return out

    def op_sort(self) -> Schema:
        by = self.columns("by")
        desc = self.raw.get("descending", False)
        if isinstance(desc, list):
            if len(desc) != len(by) or not all(isinstance(d, bool) for d in desc):
                raise self.fail(
                    "'descending' must be true, false or one of them per column.",
                    field="descending",
                )
        elif not isinstance(desc, bool):
            raise self.fail("'descending' must be true or false.", field="descending")
        return dict(self.schema)

    def op_sample(self) -> Schema:
        fraction = self.raw["fraction"]
        if (
            not isinstance(fraction, int | float)
            or isinstance(fraction, bool)
            or not 0 < fraction <= 1
        ):
            raise self.fail("'fraction' must be a number above 0 and at most 1.", field="fraction")
        seed = self.raw.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
            raise self.fail("'seed' must be a whole number from 0 to 2**32-1.", field="seed")
        return dict(self.schema)


def pivot_names(keys: list[Any]) -> list[str]:
    """The column a pivot key becomes: its text as a column name."""
    from ..ingest import normalize_names

    return normalize_names([str(k) for k in keys])


def _castable(source: str, to: str) -> bool:
    """Text to and from anything; numbers and booleans among themselves; dates and
    timestamps between them."""
    if source == to or "string" in (source, to):
        return True
    numeric = (*NUMERIC, "boolean")
    return (source in numeric and to in numeric) or {source, to} == {"date", "datetime"}


def _family(type_: str) -> str:
    return "number" if type_ in NUMERIC else type_


def _iso(value: str, type_: str) -> bool:
    import datetime as dt

    try:
        if type_ == "date":
            dt.date.fromisoformat(value)
        else:
            dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
