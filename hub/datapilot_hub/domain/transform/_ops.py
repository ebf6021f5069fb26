"""Each step of a checked recipe as dask.dataframe operations.

Partitions are pandas DataFrames whose columns are backed by Arrow
(``pd.ArrowDtype``), so nulls stay nulls in every type; the row-wise steps run as
functions on each partition (``map_partitions``, with the exact ``meta`` computed on
the empty frame), the others (deduplicate, group by, join, pivot, unpivot, sort,
sample) are dask's own, so the graph runs on any scheduler. Nothing here computes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..expressions._pandas import evaluate, mask
from ._recipe import NUMERIC, Recipe, Step, pivot_names

#: The Arrow type a column of each logical type gets when a step makes it.
ARROW_TYPES = {
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    "string": pa.large_string(),
}
_TRUE = {"true", "t", "yes", "y", "1", "on"}
_FALSE = {"false", "f", "no", "n", "0", "off"}


def apply_recipe(ddf: Any, recipe: Recipe, others: dict[int, Any] | None = None) -> Any:
    """The dask DataFrame a recipe makes of ``ddf`` (lazy).

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        The source version, Arrow-backed partitions.
    recipe : Recipe
        The checked steps.
    others : dict of int to dask.dataframe.DataFrame
        For each ``join`` step (by its index), the other dataset.
    """
    for step in recipe.steps:
        ddf = apply_step(ddf, step, (others or {}).get(step.index))
    return ddf


def apply_step(ddf: Any, step: Step, other: Any = None) -> Any:
    """One step on a dask DataFrame (or, for the row-wise ones, a pandas one)."""
    return _OPS[step.op](ddf, step, other)


def _arrow(series: pd.Series) -> pa.Array:
    """A column's values as one Arrow array."""
    if isinstance(series.dtype, pd.ArrowDtype):
        values = series.array._pa_array  # type: ignore[attr-defined]
        return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return pa.array(series, from_pandas=True)


def _series(values: pa.Array, like: pd.Series) -> pd.Series:
    return pd.Series(pd.arrays.ArrowExtensionArray(values), index=like.index, name=like.name)


def _row_wise(func):
    """A step that maps each partition: ``meta`` is the function on the empty frame."""

    def op(ddf: Any, step: Step, other: Any) -> Any:
        if isinstance(ddf, pd.DataFrame):
            return func(ddf, step)
        return ddf.map_partitions(func, step, meta=func(ddf._meta, step))

    return op


# ---- columns ----------------------------------------------------------------------


def _select(ddf, step, other):
    return ddf[list(step.after)]


def _drop(ddf, step, other):
    return ddf.drop(columns=[c for c in step.before if c not in step.after])


def _rename(ddf, step, other):
    return ddf.rename(columns=step.args["columns"])


@_row_wise
def _cast(frame: pd.DataFrame, step: Step) -> pd.DataFrame:
    out = frame.copy()
    for name, to in step.args["columns"].items():
        out[name] = _series(cast_values(_arrow(frame[name]), step.before[name], to), frame[name])
    return out


def cast_values(values: pa.Array, source: str, to: str) -> pa.Array:
    """Values of logical type ``source`` as ``to``; a value that does not fit is null."""
    target = ARROW_TYPES[to]
    if source == to:
        return values
    if to == "string":
        if source == "boolean":
            return pc.if_else(values, "true", "false").cast(target)
        return pc.cast(values, target)
    if source == "string":
        text = pc.utf8_trim_whitespace(values.cast(pa.large_string()))
        if to in NUMERIC:
            numbers = pd.to_numeric(pd.Series(text.to_pandas()), errors="coerce").to_numpy(
                dtype=float, na_value=np.nan
            )
            return _from_float(numbers, to)
        if to == "boolean":
            lower = pc.utf8_lower(text)
            true = pc.is_in(lower, pa.array(sorted(_TRUE)))
            false = pc.is_in(lower, pa.array(sorted(_FALSE)))
            return pc.if_else(true, True, pc.if_else(false, False, pa.scalar(None, pa.bool_())))
        parsed = pd.to_datetime(
            pd.Series(text.to_pandas(), dtype=object), errors="coerce", format="ISO8601", utc=True
        ).dt.tz_localize(None)
        return _datetimes(parsed, to)
    if to in NUMERIC and source in (*NUMERIC, "boolean"):
        if to == "number" or source != "number":
            return pc.cast(values, target)
        return _from_float(values.to_numpy(zero_copy_only=False), to)
    if to == "boolean":
        return pc.not_equal(values, 0)
    # date <-> datetime
    return pc.cast(values, target)


def _from_float(numbers: np.ndarray, to: str) -> pa.Array:
    numbers = np.asarray(numbers, dtype=float)
    if to == "number":
        return pa.array(numbers, type=pa.float64(), from_pandas=True)
    whole = np.isfinite(numbers) & (numbers == np.floor(numbers)) & (np.abs(numbers) < 2**63)
    out = np.where(whole, numbers, 0).astype(np.int64)
    return pa.array(out, type=pa.int64(), mask=~whole)


def _datetimes(parsed: pd.Series, to: str) -> pa.Array:
    stamps = pa.array(parsed, type=pa.timestamp("us"), from_pandas=True)
    return stamps.cast(pa.date32()) if to == "date" else stamps


@_row_wise
def _fill_null(frame: pd.DataFrame, step: Step) -> pd.DataFrame:
    out = frame.copy()
    for name, value in step.args["columns"].items():
        values = _arrow(frame[name])
        out[name] = _series(
            pc.fill_null(values, _scalar(value, step.before[name], values)), out[name]
        )
    return out


def _scalar(value: Any, type_: str, like: pa.Array) -> pa.Scalar:
    import datetime as dt

    if type_ == "date":
        value = dt.date.fromisoformat(value)
    elif type_ == "datetime":
        value = dt.datetime.fromisoformat(value)
        if getattr(like.type, "tz", None) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
    return pa.scalar(value, like.type if like.type != pa.null() else None)


def _drop_null(ddf, step, other):
    columns = step.args.get("columns")
    if isinstance(columns, str):
        columns = [columns]
    return ddf.dropna(subset=columns, how=step.args.get("how", "any"))


# ---- text -------------------------------------------------------------------------


def _text_step(change):
    @_row_wise
    def op(frame: pd.DataFrame, step: Step) -> pd.DataFrame:
        out = frame.copy()
        columns = step.args["columns"]
        for name in [columns] if isinstance(columns, str) else columns:
            out[name] = _series(change(_arrow(frame[name]), step.args), out[name])
        return out

    return op


def _case(values: pa.Array, to: str) -> pa.Array:
    return {"lower": pc.utf8_lower, "upper": pc.utf8_upper, "title": pc.utf8_title}[to](values)


def _standardize(values: pa.Array, args: dict[str, Any]) -> pa.Array:
    """Unicode NFKC, spaces trimmed and runs of spaces made one, empty text null."""
    text = pc.utf8_normalize(values, form="NFKC")
    text = pc.replace_substring_regex(text, r"\s+", " ")
    text = pc.utf8_trim_whitespace(text)
    if "case" in args:
        text = _case(text, args["case"])
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)


@_row_wise
def _map_values(frame: pd.DataFrame, step: Step) -> pd.DataFrame:
    out = frame.copy()
    name, mapping = step.args["column"], step.args["mapping"]
    values = _arrow(frame[name])
    index = pc.index_in(values, value_set=pa.array(list(mapping), values.type))
    mapped = pc.take(pa.array(list(mapping.values()), values.type), index)
    if "default" in step.args:
        fallback = pc.if_else(
            pc.is_null(values), values, pa.scalar(step.args["default"], values.type)
        )
    else:
        fallback = values
    out[name] = _series(pc.if_else(pc.is_valid(index), mapped, fallback), out[name])
    return out


@_row_wise
def _parse_dates(frame: pd.DataFrame, step: Step) -> pd.DataFrame:
    out = frame.copy()
    to = step.args.get("to", "date")
    fmt = step.args.get("format") or "mixed"
    columns = step.args["columns"]
    for name in [columns] if isinstance(columns, str) else columns:
        text = pd.Series(_arrow(frame[name]).to_pandas(), dtype=object).str.strip()
        parsed = pd.to_datetime(
            text,
            format=fmt,
            dayfirst=bool(step.args.get("dayfirst", False)),
            errors="coerce",
            utc=True,
        ).dt.tz_localize(None)
        out[name] = _series(_datetimes(parsed, to), out[name])
    return out


# ---- rows -------------------------------------------------------------------------


def _deduplicate(ddf, step, other):
    keys = step.args.get("keys")
    return ddf.drop_duplicates(subset=[keys] if isinstance(keys, str) else keys)


@_row_wise
def _filter(frame: pd.DataFrame, step: Step) -> pd.DataFrame:
    return frame[mask(step.node, frame)]


@_row_wise
def _derive(frame: pd.DataFrame, step: Step) -> pd.DataFrame:
    value = evaluate(step.node, frame)
    target = ARROW_TYPES[step.after[step.args["name"]]]
    values = _arrow(value)
    if values.type == pa.null() or (
        pa.types.is_string(values.type) and target == pa.large_string()
    ):
        values = values.cast(target)
    return frame.assign(**{step.args["name"]: _series(values, value)})


def _sort(ddf, step, other):
    by = step.args["by"]
    by = [by] if isinstance(by, str) else list(by)
    desc = step.args.get("descending", False)
    ascending = [not d for d in desc] if isinstance(desc, list) else not desc
    if isinstance(ddf, pd.DataFrame):
        return ddf.sort_values(by, ascending=ascending, na_position="last", kind="stable")
    return ddf.sort_values(by, ascending=ascending, na_position="last")


def _sample(ddf, step, other):
    return ddf.sample(frac=float(step.args["fraction"]), random_state=step.args.get("seed", 0))


# ---- shapes -----------------------------------------------------------------------


def _group_by(ddf, step, other):
    by = step.args["by"]
    by = [by] if isinstance(by, str) else list(by)
    grouped = ddf.groupby(by, dropna=False)
    spec: dict[str, list[str]] = {}
    names: list[str] = []
    extra = []
    for column, funcs in step.args["aggs"].items():
        for func in [funcs] if isinstance(funcs, str) else funcs:
            if column == "*":
                extra.append(grouped.size().to_frame("count"))
            elif func == "count_distinct":
                # dask has no nunique in agg(): distinct (keys, value) pairs, counted
                distinct = ddf[[*by, column]].drop_duplicates()
                counted = distinct.groupby(by, dropna=False)[column].count()
                extra.append(counted.to_frame(f"{column}_{func}"))
            else:
                spec.setdefault(column, []).append(func)
                names.append(f"{column}_{func}")
    # SQL's sum of no value is null, pandas' is 0: a count beside each sum tells them apart
    summed = [c for c, fs in spec.items() if "sum" in fs]
    for column in summed:
        if "count" not in spec[column]:
            spec[column].append("count")
    result = None
    if spec:
        result = grouped.agg(spec)
        result.columns = [f"{c}_{f}" for c, fs in spec.items() for f in fs]
        if summed:
            result = _null_empty_sums(result, summed)
    for part in extra:
        result = part if result is None else result.join(part, how="left")
    return _conform(result.reset_index(), step.after)


def _null_empty_sums(ddf, columns: list[str]):
    if isinstance(ddf, pd.DataFrame):
        return _empty_sums(ddf, columns)
    return ddf.map_partitions(_empty_sums, columns, meta=_empty_sums(ddf._meta, columns))


def _empty_sums(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        total = _arrow(frame[f"{column}_sum"])
        empty = pc.equal(_arrow(frame[f"{column}_count"]), 0)
        values = pc.if_else(empty, pa.scalar(None, total.type), total)
        out[f"{column}_sum"] = _series(values, frame[f"{column}_sum"])
    return out


def _conform(ddf, schema: dict[str, str]):
    """Columns in the schema's order, Arrow-backed, of the schema's logical types."""
    ddf = ddf[list(schema)]
    if isinstance(ddf, pd.DataFrame):
        return _to_types(ddf, schema)
    return ddf.map_partitions(_to_types, schema, meta=_to_types(ddf._meta, schema))


def _to_types(frame: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    out = {}
    for name, type_ in schema.items():
        values = _arrow(frame[name])
        if type_ in ("string", "integer", "number", "boolean") and values.type != (
            target := ARROW_TYPES[type_]
        ):
            if not (type_ == "string" and pa.types.is_string(values.type)):
                values = values.cast(target)
        out[name] = pd.arrays.ArrowExtensionArray(values)
    return pd.DataFrame(out, index=frame.index)


def _join(ddf, step, other):
    on = step.args["on"]
    on = [on] if isinstance(on, str) else list(on)
    how = step.args.get("how", "inner")
    name = step.args["with"]
    renames = {
        c: f"{c}_{name}"[:63] for c in step.other["schema"] if c not in on and c in step.before
    }
    right = other.rename(columns=renames)
    left = ddf
    for key in on:
        if step.before[key] != step.other["schema"][key]:
            # integer against number: both as numbers
            left = _conform(left, {**step.before, key: "number"})
            right = _conform(right, {**_schema_after_rename(step, renames), key: "number"})
    # a null key matches nothing (SQL): the side whose unmatched rows are dropped anyway
    # loses its null keys before the merge
    if how in ("inner", "left"):
        right = right.dropna(subset=on)
    if how in ("inner", "right"):
        left = left.dropna(subset=on)
    merged = left.merge(right, on=on, how=how)
    return _conform(merged, step.after)


def _schema_after_rename(step: Step, renames: dict[str, str]) -> dict[str, str]:
    return {renames.get(c, c): t for c, t in step.other["schema"].items()}


def _pivot(ddf, step, other):
    index = step.args["index"]
    index = [index] if isinstance(index, str) else list(index)
    keys = step.args["keys"]
    names = pivot_names(keys)
    agg = step.args.get("agg", "sum")
    spread = _spread_meta(ddf, step, names)
    grouped = spread.groupby(index, dropna=False)
    if agg == "count_distinct":
        parts = [
            spread[[*index, n]].drop_duplicates().groupby(index, dropna=False)[n].count()
            for n in names
        ]
        result = parts[0].to_frame(names[0])
        for n, part in zip(names[1:], parts[1:], strict=True):
            result = result.join(part.to_frame(n), how="left")
    elif agg == "sum":
        # a key without a value in a group is null there, as in SQL's PIVOT
        result = grouped.agg({n: ["sum", "count"] for n in names})
        result.columns = [f"{n}_{f}" for n in names for f in ("sum", "count")]
        result = _null_empty_sums(result, names)
        result = result.rename(columns={f"{n}_sum": n for n in names})
    else:
        result = grouped.agg({n: agg for n in names})
    return _conform(result.reset_index(), step.after)


def _spread_meta(ddf, step, names):
    if isinstance(ddf, pd.DataFrame):
        return _spread(ddf, step, names)
    return ddf.map_partitions(_spread, step, names, meta=_spread(ddf._meta, step, names))


def _spread(frame: pd.DataFrame, step: Step, names: list[str]) -> pd.DataFrame:
    """One column per pivot key: the value where the pivot column is that key."""
    pivot, values = step.args["columns"], step.args["values"]
    index = step.args["index"]
    index = [index] if isinstance(index, str) else list(index)
    keys_type = step.before[pivot]
    column = _arrow(frame[pivot])
    value = _arrow(frame[values])
    out = {c: frame[c] for c in index}
    for key, name in zip(step.args["keys"], names, strict=True):
        hit = pc.fill_null(pc.equal(column, _scalar(key, keys_type, column)), False)
        out[name] = _series(pc.if_else(hit, value, pa.scalar(None, value.type)), frame[values])
    return pd.DataFrame(out, index=frame.index)


def _unpivot(ddf, step, other):
    index = step.args["index"]
    index = [index] if isinstance(index, str) else list(index)
    columns = step.args["columns"]
    columns = [columns] if isinstance(columns, str) else list(columns)
    name = step.args.get("name", "variable")
    value = step.args.get("value", "value")
    same = {step.before[c] for c in columns}
    if len(same) > 1:
        ddf = _conform(ddf, {**step.before, **{c: "number" for c in columns}})
    melted = ddf.melt(id_vars=index, value_vars=columns, var_name=name, value_name=value)
    return _conform(melted, step.after)


_OPS = {
    "select": _select,
    "drop": _drop,
    "rename": _rename,
    "cast": _cast,
    "fill_null": _fill_null,
    "drop_null": _drop_null,
    "trim": _text_step(lambda v, a: pc.utf8_trim_whitespace(v)),
    "case": _text_step(lambda v, a: _case(v, a["to"])),
    "standardize": _text_step(_standardize),
    "map_values": _map_values,
    "parse_dates": _parse_dates,
    "deduplicate": _deduplicate,
    "filter": _filter,
    "derive": _derive,
    "group_by": _group_by,
    "join": _join,
    "pivot": _pivot,
    "unpivot": _unpivot,
    "sort": _sort,
    "sample": _sample,
}

__all__ = ["ARROW_TYPES", "apply_recipe", "apply_step", "cast_values"]
