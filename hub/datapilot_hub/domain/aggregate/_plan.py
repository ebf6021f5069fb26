"""An aggregation as one DuckDB query over a dataset version, checked against its schema.

The query reads only the columns the aggregation needs (DuckDB projects them into the
Parquet scan) and its filter is pushed into the scan, where Parquet row-group statistics
skip the row groups it excludes. Names come from the schema and are quoted; every literal
of an expression is a parameter.

Shapes of the query:

- groups: ``SELECT keys, metrics FROM filtered GROUP BY keys ORDER BY ... LIMIT ...``;
- ranked series, when a ``limit`` applies to ``group_by`` together with a time bucket or
  ``other``: the groups are ranked over the whole filtered range, the top ``limit`` kept
  (their rank joined back onto the rows), and, with ``other``, the rest summed up as one
  more group per bucket, computed from the rows (so a median of "other" is a median).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import DatapilotError, bad_request
from ..expressions import ExpressionError, compile_expression, quote_name
from ._spec import MAX_ROWS, Aggregation, Metric

NUMERIC = ("integer", "number")
ORDERED = ("integer", "number", "date", "datetime", "string")
BUCKET = '"__bucket"'
RANK = '"__rank"'


@dataclass(frozen=True)
class Plan:
    """A query ready to run.

    Parameters
    ----------
    sql : str
        The query; it reads the view ``__source`` (the version's Parquet files, or an
        Arrow dataset over them) that the engine makes.
    params : list
        Its parameters, in the order of their ``?``.
    columns : list of tuple
        The answer's columns: (name, logical type).
    reads : list of str
        The dataset's columns the query reads.
    row_cap : int
        The query returns at most this many rows; that many means more groups than
        :data:`MAX_ROWS`.
    """

    sql: str
    params: list[Any]
    columns: list[tuple[str, str]]
    reads: list[str]
    row_cap: int


def expression_error(error: ExpressionError, field: str) -> DatapilotError:
    """The 400 an expression's error becomes, naming the field and the position.

    Parameters
    ----------
    error : ExpressionError
        The parser's or checker's error.
    field : str
        Where the expression was (``filter``, ``derive.revenue``).
    """
    details: dict[str, Any] = {"field": field, "position": error.position}
    if error.column:
        details["column"] = error.column
    return DatapilotError(400, error.code, f"{field}: {error.message}", **details)


def plan(agg: Aggregation, schema: Mapping[str, str]) -> Plan:
    """Check an aggregation against a version's schema and build its query.

    Parameters
    ----------
    agg : Aggregation
        What to compute.
    schema : mapping of str to str
        The version's columns and their logical types, in order.

    Raises
    ------
    DatapilotError
        400 naming the field: unknown columns, wrong types, bad expressions.
    """
    types = dict(schema)
    derived: dict[str, tuple[str, list[Any], list[str]]] = {}
    for name, text in agg.derive.items():
        if name in schema:
            raise bad_request(f"derive.{name}", f"The dataset already has a column {name!r}.")
        try:
            compiled = compile_expression(text, schema)
        except ExpressionError as e:
            raise expression_error(e, f"derive.{name}") from None
        derived[name] = (compiled.sql, compiled.params, compiled.columns)
        types[name] = compiled.type

    where, where_params, where_columns = "", [], []
    if agg.filter is not None:
        try:
            compiled = compile_expression(agg.filter, types, want="boolean")
        except ExpressionError as e:
            raise expression_error(e, "filter") from None
        where, where_params, where_columns = compiled.sql, compiled.params, compiled.columns

    for i, name in enumerate(agg.group_by):
        _known(name, types, f"group_by[{i}]")
    columns: list[tuple[str, str]] = []
    bucket_sql = None
    if agg.time_bucket is not None:
        tb = agg.time_bucket
        kind = _known(tb.column, types, "time_bucket.column")
        if kind not in ("date", "datetime"):
            raise bad_request(
                "time_bucket.column",
                f"time_bucket.column {tb.column!r} is {kind}; buckets need a date or timestamp.",
            )
        if kind == "date" and tb.unit == "hour":
            raise bad_request("time_bucket.unit", f"{tb.column!r} holds dates: it has no hours.")
        bucket_sql = f"date_trunc('{tb.unit}', {quote_name(tb.column)})"
        if kind == "date":
            bucket_sql = f"CAST({bucket_sql} AS DATE)"
        columns.append((tb.column, kind))
    columns += [(name, types[name]) for name in agg.group_by]
    metric_sql = []
    for metric in agg.metrics:
        sql, kind = _metric(metric, types)
        metric_sql.append(f"{sql} AS {quote_name(metric.name)}")
        columns.append((metric.name, kind))

    answer = [name for name, _ in columns]
    for key in agg.sort:
        if key.column not in answer:
            raise bad_request(
                key.field,
                f"{key.field}: {key.column!r} is not a column of the answer ({', '.join(answer)}).",
            )

    # the dataset's columns read: what the kept expressions and the keys and metrics use
    used = set(agg.group_by) | {m.column for m in agg.metrics if m.column} | set(where_columns)
    if agg.time_bucket is not None:
        used.add(agg.time_bucket.column)
    kept = {name: d for name, d in derived.items() if name in used}
    reads = [c for c in schema if c in used or any(c in d[2] for d in kept.values())]

    base_params: list[Any] = []
    select = [quote_name(c) for c in reads]
    for name, (sql, params, _) in kept.items():
        select.append(f"{sql} AS {quote_name(name)}")
        base_params += params
    inputs = list(dict.fromkeys([*agg.group_by, *(m.column for m in agg.metrics if m.column)]))
    filtered_select = ([f"{bucket_sql} AS {BUCKET}"] if bucket_sql else []) + [
        quote_name(c) for c in inputs
    ]
    ctes = [
        f"base AS (SELECT {', '.join(select) or '1 AS __one'} FROM __source)",
        f"filtered AS (SELECT {', '.join(filtered_select) or '1 AS __one'} FROM base"
        + (f" WHERE {where})" if where else ")"),
    ]
    params = base_params + where_params
    group_keys = [quote_name(c) for c in agg.group_by]
    ranked = agg.limit is not None and bool(agg.group_by) and (agg.other or bucket_sql is not None)
    if ranked:
        sql, cap = _ranked(agg, ctes, group_keys, metric_sql, bucket_sql is not None)
        if agg.other:
            columns.append(("other", "boolean"))
    else:
        sql, cap = _grouped(agg, ctes, group_keys, metric_sql, bucket_sql is not None)
    return Plan(sql, params, columns, reads, cap)


def _known(name: str, types: Mapping[str, str], field: str) -> str:
    if name not in types:
        raise DatapilotError(
            400,
            "unknown_column",
            f"{field}: unknown column {name!r}; the columns are: {', '.join(list(types)[:30])}.",
            field=field,
            column=name,
        )
    return types[name]


def _metric(metric: Metric, types: Mapping[str, str]) -> tuple[str, str]:
    """The SQL of one aggregate and the logical type of its result."""
    if metric.column is None:
        return "count(*)", "integer"
    kind = _known(metric.column, types, metric.field)
    col = quote_name(metric.column)
    func = metric.func
    if func == "count":
        return f"count({col})", "integer"
    if func == "count_distinct":
        return f"count(DISTINCT {col})", "integer"
    if func in ("min", "max"):
        if kind not in ORDERED:
            raise bad_request(
                metric.field, f"{metric.field}: {func} needs values with an order, not {kind}."
            )
        return f"{func}({col})", kind
    if kind not in NUMERIC:
        raise bad_request(
            metric.field,
            f"{metric.field}: {func if func != 'percentile' else 'a percentile'} needs numbers;"
            f" {metric.column!r} is {kind}.",
        )
    if func == "sum":
        # DuckDB sums integers into a 128-bit integer; answers carry 64 bits
        return (
            (f"CAST(sum({col}) AS BIGINT)", "integer")
            if kind == "integer"
            else (
                f"sum({col})",
                "number",
            )
        )
    if func == "mean":
        return f"avg({col})", "number"
    q = 0.5 if func == "median" else metric.q
    return f"quantile_cont({col}, {float(q)!r})", "number"


def _order(agg: Aggregation, biggest_first: bool, keys: list[str]) -> list[str]:
    """ORDER BY terms: the asked sort (names of the answer's columns), else the first
    metric descending when ``biggest_first``; then ``keys``, so that ties come out the
    same every time."""
    terms = [f"{quote_name(k.column)} {'DESC' if k.desc else 'ASC'} NULLS LAST" for k in agg.sort]
    if not agg.sort and biggest_first and agg.metrics:
        terms.append(f"{quote_name(agg.metrics[0].name)} DESC NULLS LAST")
    return terms + [f"{k} ASC NULLS LAST" for k in keys]


def _grouped(agg, ctes, group_keys, metric_sql, bucketed) -> tuple[str, int]:
    """One row per group; ``limit`` keeps the first rows in the answer's order."""
    keys = ([BUCKET] if bucketed else []) + group_keys
    outs = ([f"{BUCKET} AS {quote_name(agg.time_bucket.column)}"] if bucketed else []) + group_keys
    sql = f"WITH {', '.join(ctes)} SELECT {', '.join(outs + metric_sql)} FROM filtered"
    if keys:
        # buckets in time order; plain groups largest first when a limit keeps the top ones
        biggest_first = agg.limit is not None and not bucketed
        sql += f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(_order(agg, biggest_first, keys))}"
    if agg.limit is not None:
        return f"{sql} LIMIT {int(agg.limit)}", agg.limit + 1
    return f"{sql} LIMIT {MAX_ROWS + 1}", MAX_ROWS + 1


def _ranked(agg, ctes, group_keys, metric_sql, bucketed) -> tuple[str, int]:
    """The top ``limit`` groups over the whole range, per bucket; the rest as ``other``."""
    if agg.time_bucket is not None and any(k.column == agg.time_bucket.column for k in agg.sort):
        field = next(k.field for k in agg.sort if k.column == agg.time_bucket.column)
        raise bad_request(
            field,
            f"{field}: with a time bucket, sort ranks the groups of group_by; the buckets"
            " are always in time order.",
        )
    order = _order(agg, True, group_keys)
    join = " AND ".join(f"filtered.{k} IS NOT DISTINCT FROM top.{k}" for k in group_keys)
    ctes = ctes + [
        f"totals AS (SELECT {', '.join(group_keys + metric_sql)} FROM filtered"
        f" GROUP BY {', '.join(group_keys)})",
        f"top AS (SELECT {', '.join(group_keys)}, row_number() OVER (ORDER BY"
        f" {', '.join(order)}) AS {RANK} FROM totals QUALIFY {RANK} <= {int(agg.limit)})",
        f"marked AS (SELECT filtered.*, top.{RANK} FROM filtered"
        f" {'LEFT ' if agg.other else ''}JOIN top ON {join})",
    ]
    outs = [f"{BUCKET} AS {quote_name(agg.time_bucket.column)}"] if bucketed else []
    # the groups past the limit have no rank: one group, its keys null
    outs += [
        f"CASE WHEN {RANK} IS NULL THEN NULL ELSE any_value({k}) END AS {k}" for k in group_keys
    ]
    outs += metric_sql
    if agg.other:
        outs.append(f'{RANK} IS NULL AS "other"')
    keys = ([BUCKET] if bucketed else []) + [RANK]
    sql = (
        f"WITH {', '.join(ctes)} SELECT {', '.join(outs)} FROM marked GROUP BY {', '.join(keys)}"
        f" ORDER BY {', '.join(f'{k} ASC NULLS LAST' for k in keys)} LIMIT {MAX_ROWS + 1}"
    )
    return sql, MAX_ROWS + 1


def sample_plan(
    columns: list[str], schema: Mapping[str, str], filter: str | None, rows: int, seed: int
) -> Plan:
    """A uniform sample of ``rows`` rows (those with a value in every column asked for)
    after ``filter``: the points of a scatter plot.

    Reservoir sampling over the filtered rows, repeatable for one seed (DuckDB's
    ``USING SAMPLE reservoir(n ROWS) REPEATABLE (seed)``).

    Parameters
    ----------
    columns : list of str
        The columns to return.
    schema : mapping of str to str
        The version's columns and their logical types.
    filter : str, optional
        An expression rows must satisfy.
    rows : int
        Rows at most.
    seed : int
        The sample's seed.
    """
    for i, name in enumerate(columns):
        _known(name, schema, f"columns[{i}]")
    conditions = [f"{quote_name(c)} IS NOT NULL" for c in columns]
    params: list[Any] = []
    if filter is not None:
        try:
            compiled = compile_expression(filter, schema, want="boolean")
        except ExpressionError as e:
            raise expression_error(e, "filter") from None
        conditions.append(f"({compiled.sql})")
        params = compiled.params
        reads_extra = compiled.columns
    else:
        reads_extra = []
    names = ", ".join(quote_name(c) for c in columns)
    sql = (
        f"SELECT {names} FROM (SELECT {names} FROM __source WHERE {' AND '.join(conditions)})"
        f" USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE ({int(seed)})"
    )
    reads = [c for c in schema if c in columns or c in reads_extra]
    return Plan(sql, params, [(c, schema[c]) for c in columns], reads, int(rows) + 1)
