"""``dp.transform("sales")``: a recipe built step by step, previewed, saved.

Each method returns a new :class:`Transform` with one more step, so a chain can be kept
and branched; nothing reaches the service until :meth:`Transform.preview`,
:meth:`Transform.save` or :meth:`Transform.save_recipe`. The steps are the JSON the
service takes (``POST .../transform``), which checks them against the dataset.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from datapilot_contract import check_output_mode

from . import _calls
from ._validation import checked, validate_name

if TYPE_CHECKING:
    import pandas as pd

    from ._client import DatapilotClient
    from ._display import DatasetInfo


def _check_output(name: str, mode: str) -> None:
    validate_name(name)
    checked(check_output_mode, mode, "mode")


def _names(columns: Any) -> list[str]:
    if isinstance(columns, str):
        return [columns]
    return list(columns)


class Transform:
    """A recipe of declarative steps on dataset ``source``.

    Parameters
    ----------
    client : DatapilotClient
        Where it runs.
    source : str
        The dataset it starts from.
    version : int, optional
        A version of it; by default the current one.

    Examples
    --------
    >>> t = (dp.transform("sales").dropna(["amount"]).filter("region != 'x'")
    ...      .derive("net", "amount * (1 - discount / 100)")
    ...      .group_by("region", {"net": ["sum"], "*": ["count"]}))
    >>> t.preview(5)              # the first rows, on a sample, nothing saved
    >>> t.save("sales_by_region") # runs on Dask, waits for the job
    """

    def __init__(
        self,
        client: DatapilotClient,
        source: str,
        version: int | None = None,
        steps: list[dict[str, Any]] | None = None,
    ) -> None:
        self._client = client
        self.source = validate_name(source)
        self.version = version
        self._steps: list[dict[str, Any]] = [dict(s) for s in steps or []]

    # ---- the recipe ---------------------------------------------------------------

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The steps so far, as the service takes them (a copy)."""
        return [dict(s) for s in self._steps]

    def to_json(self) -> dict[str, Any]:
        """``{"source", "steps"}`` (and ``version`` when one was asked for)."""
        out: dict[str, Any] = {"source": self.source, "steps": self.steps}
        if self.version is not None:
            out["version"] = self.version
        return out

    def __repr__(self) -> str:
        lines = [f"dp.transform({self.source!r})" + (f" v{self.version}" if self.version else "")]
        for i, step in enumerate(self._steps):
            args = {k: v for k, v in step.items() if k != "op"}
            lines.append(f"  {i}. {step['op']} {json.dumps(args, default=str)}")
        return "\n".join(lines)

    def __len__(self) -> int:
        return len(self._steps)

    def step(self, op: str, **fields: Any) -> Transform:
        """A new recipe with one more step ``{"op": op, **fields}`` (any op the service
        knows, e.g. one this builder has no method for)."""
        return Transform(
            self._client, self.source, self.version, [*self._steps, {"op": op, **fields}]
        )

    # ---- columns ------------------------------------------------------------------

    def select(self, columns: list[str] | str) -> Transform:
        """Keep these columns, in this order."""
        return self.step("select", columns=_names(columns))

    def drop(self, columns: list[str] | str) -> Transform:
        """Remove these columns."""
        return self.step("drop", columns=_names(columns))

    def rename(self, columns: dict[str, str] | None = None, **renames: str) -> Transform:
        """Rename columns: ``rename({"amount": "revenue"})`` or ``rename(amount="revenue")``."""
        return self.step("rename", columns={**(columns or {}), **renames})

    def cast(self, columns: dict[str, str] | None = None, **types: str) -> Transform:
        """Change types (``integer number boolean date datetime string``); a value that
        does not fit becomes null."""
        return self.step("cast", columns={**(columns or {}), **types})

    # ---- nulls and text -----------------------------------------------------------

    def fillna(self, values: dict[str, Any] | None = None, **by_column: Any) -> Transform:
        """Fill nulls with a value per column (dates as ``"2025-01-31"``)."""
        return self.step("fill_null", columns={**(values or {}), **by_column})

    fill_null = fillna

    def dropna(self, columns: list[str] | str | None = None, how: str = "any") -> Transform:
        """Drop the rows with a null in ``columns`` (all columns by default); ``how="all"``
        drops only rows whose columns are all null."""
        fields: dict[str, Any] = {"how": how}
        if columns is not None:
            fields["columns"] = _names(columns)
        return self.step("drop_null", **fields)

    drop_null = dropna

    def trim(self, columns: list[str] | str) -> Transform:
        """Remove leading and trailing spaces."""
        return self.step("trim", columns=_names(columns))

    def case(self, columns: list[str] | str, to: str = "lower") -> Transform:
        """Text to ``lower``, ``upper`` or ``title`` case."""
        return self.step("case", columns=_names(columns), to=to)

    def standardize(self, columns: list[str] | str, case: str | None = None) -> Transform:
        """Unicode-normalize, trim, collapse runs of spaces, empty text to null (and a
        case, if given)."""
        fields: dict[str, Any] = {"columns": _names(columns)}
        if case is not None:
            fields["case"] = case
        return self.step("standardize", **fields)

    def map_values(
        self, column: str, mapping: dict[str, str | None], default: Any = ...
    ) -> Transform:
        """Replace values of a text column (category standardization); values not in
        ``mapping`` stay, or become ``default`` when it is given."""
        fields: dict[str, Any] = {"column": column, "mapping": dict(mapping)}
        if default is not ...:
            fields["default"] = default
        return self.step("map_values", **fields)

    def parse_dates(
        self,
        columns: list[str] | str,
        format: str | None = None,
        dayfirst: bool = False,
        to: str = "date",
    ) -> Transform:
        """Text to dates (``to="datetime"``: timestamps), by a strftime ``format`` or
        guessed; what does not parse is null."""
        fields: dict[str, Any] = {"columns": _names(columns), "to": to}
        if format is not None:
            fields["format"] = format
        if dayfirst:
            fields["dayfirst"] = True
        return self.step("parse_dates", **fields)

    # ---- rows ---------------------------------------------------------------------

    def deduplicate(self, keys: list[str] | str | None = None) -> Transform:
        """Keep one row of each set of equal rows (or of equal ``keys``)."""
        return self.step("deduplicate", **({"keys": _names(keys)} if keys is not None else {}))

    drop_duplicates = deduplicate

    def filter(self, expr: str) -> Transform:
        """Keep the rows where the expression is true: ``"amount > 5 and region != 'x'"``."""
        return self.step("filter", expr=expr)

    def derive(self, name: str, expr: str) -> Transform:
        """A new (or replaced) column from an expression: ``derive("net", "a * (1 - d)")``."""
        return self.step("derive", name=name, expr=expr)

    def sort(self, by: list[str] | str, descending: bool | list[bool] = False) -> Transform:
        """Order the rows."""
        return self.step("sort", by=_names(by), descending=descending)

    def sample(self, fraction: float, seed: int = 0) -> Transform:
        """A random share of the rows (the same for the same seed)."""
        return self.step("sample", fraction=fraction, seed=seed)

    # ---- shapes -------------------------------------------------------------------

    def group_by(self, by: list[str] | str, aggs: dict[str, list[str] | str]) -> Transform:
        """One row per group: ``group_by("region", {"amount": ["sum", "mean"], "*": ["count"]})``
        makes ``amount_sum``, ``amount_mean`` and ``count``."""
        return self.step("group_by", by=_names(by), aggs=dict(aggs))

    def join(
        self,
        with_: str,
        on: list[str] | str,
        how: str = "inner",
        version: int | None = None,
    ) -> Transform:
        """Join another dataset of the organization on key columns (``inner``, ``left``,
        ``right``, ``outer``); its other columns that clash get ``_<dataset>``."""
        fields: dict[str, Any] = {"with": validate_name(with_), "on": _names(on), "how": how}
        if version is not None:
            fields["version"] = version
        return self.step("join", **fields)

    def pivot(
        self, index: list[str] | str, columns: str, values: str, keys: list[Any], agg: str = "sum"
    ) -> Transform:
        """One column per value in ``keys`` of column ``columns``, holding ``agg`` of
        ``values`` per ``index`` group."""
        return self.step(
            "pivot", index=_names(index), columns=columns, values=values, keys=list(keys), agg=agg
        )

    def unpivot(
        self,
        index: list[str] | str,
        columns: list[str] | str,
        name: str = "variable",
        value: str = "value",
    ) -> Transform:
        """Columns into rows: a ``name`` column says which, a ``value`` column holds it."""
        return self.step(
            "unpivot", index=_names(index), columns=_names(columns), name=name, value=value
        )

    # ---- running ------------------------------------------------------------------

    def preview(self, n: int = 10) -> pd.DataFrame:
        """The recipe's first ``n`` rows, run on a sample of the source; nothing is saved.

        Raises
        ------
        DatapilotError
            When a step does not fit the data (the message names the step).
        """
        return self._client._run(_calls.transform_preview(self._client, self.to_json(), n))

    async def apreview(self, n: int = 10) -> pd.DataFrame:
        """:meth:`preview`, awaited."""
        return await self._client._arun(_calls.transform_preview(self._client, self.to_json(), n))

    def save(self, name: str, mode: str = "create") -> DatasetInfo:
        """Run the recipe on the service's Dask cluster into dataset ``name`` and wait
        for the job (with a progress bar).

        Parameters
        ----------
        name : str
            The output dataset.
        mode : {"create", "replace"}
            ``create`` fails if it exists; ``replace`` makes a new version of it.
        """
        _check_output(name, mode)
        return self._client._run(_calls.transform_save(self._client, self.to_json(), name, mode))

    async def asave(self, name: str, mode: str = "create") -> DatasetInfo:
        """:meth:`save`, awaited."""
        _check_output(name, mode)
        return await self._client._arun(
            _calls.transform_save(self._client, self.to_json(), name, mode)
        )

    def save_recipe(
        self, name: str, output: str | None = None, auto_refresh: bool = False
    ) -> dict[str, Any]:
        """Save the recipe by name in the organization, to run again or refresh later.

        Parameters
        ----------
        name : str
            The recipe's name.
        output : str, optional
            The dataset its runs write (default: the recipe's name).
        auto_refresh : bool
            Run it whenever one of its sources gets a new version.
        """
        body = {
            "source": self.source,
            "steps": self.steps,
            "output": validate_name(output or name),
            "auto_refresh": bool(auto_refresh),
        }
        return self._client._run(_calls.save_recipe(self._client, validate_name(name), body))
