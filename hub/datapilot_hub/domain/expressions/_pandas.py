"""A checked expression run on a pandas DataFrame: a Dask partition, a sample.

The checked tree is compiled by :mod:`._arrow` (the one set of rules: SQL's nulls,
Kleene's ``and``/``or``, a division by zero is null, integer overflow fails) and
evaluated on the partition's Arrow columns; the answer is a pandas Series backed by
Arrow (``pd.ArrowDtype``), so its nulls stay nulls. No Python ``eval`` anywhere.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from ._arrow import to_arrow
from ._syntax import ExpressionError, Node, columns_of


def evaluate(node: Node, frame: pd.DataFrame) -> pd.Series:
    """The value of a checked expression on every row of ``frame``.

    Parameters
    ----------
    node : Node
        An expression typed by :func:`~._check.check` against ``frame``'s columns.
    frame : pandas.DataFrame
        The rows (Arrow-backed or NumPy columns).

    Raises
    ------
    ExpressionError
        When a value cannot be computed (an integer overflow), with the expression's
        position 0.
    """
    names = columns_of(node)
    table = pa.Table.from_pandas(frame[names], preserve_index=False) if names else None
    if table is None:
        # no column: a constant, one per row
        table = pa.table({"_": pa.nulls(len(frame))})
    try:
        result = (
            pads.dataset(table)
            .to_table(columns={"_value": to_arrow(node, table.schema)})
            .column("_value")
            .combine_chunks()
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise ExpressionError(f"The expression cannot be computed: {e}", 0) from None
    return pd.Series(pd.arrays.ArrowExtensionArray(result), index=frame.index)


def mask(node: Node, frame: pd.DataFrame) -> pd.Series:
    """Which rows a checked boolean expression keeps (null is not true), as NumPy bools."""
    values = evaluate(node, frame).array._pa_array  # type: ignore[attr-defined]
    keep = pc.fill_null(values, False).to_numpy(zero_copy_only=False)
    return pd.Series(keep, index=frame.index, dtype=bool)
