"""``POST /orgs/{org}/visualizations/generate``: a chart of a dataset, as a spec.

The request is checked, the chart planned (:func:`plan_chart`), its rows computed by the
aggregation engine (:class:`~datapilot_hub.domain.aggregate.AggregateService`: only the
columns it needs, the filter pushed into the Parquet scan) and turned into the spec.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...errors import DatapilotError
from .._identity import OrgContext
from ..aggregate import AggregateService
from ..datasets import DatasetService
from ._generate import (
    SCATTER_POINTS,
    aggregation,
    build_spec,
    histogram_bins,
    histogram_counts,
    value_columns,
)
from ._recommend import MAX_SERIES, ChartPlan, DatasetFacts, plan_chart
from ._request import MAX_BARS, ChartRequest, parse_chart_request

#: the derived column a histogram's bins are computed in (unless the dataset has one)
_BIN = "bin_start"


class ChartService:
    """Chart specs of datasets, under the caller's ``data:read``.

    Parameters
    ----------
    datasets : DatasetService
        Finds versions and their schema.
    aggregates : AggregateService
        Computes the rows of each chart.
    """

    def __init__(self, datasets: DatasetService, aggregates: AggregateService) -> None:
        self.datasets = datasets
        self.aggregates = aggregates

    def generate(self, ctx: OrgContext, body: Any) -> dict[str, Any]:
        """The chart a request asks for, with the recommendation when one was made
        (blocking: call it from a thread in a server).

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization (needs ``data:read``).
        body : dict
            The request (see :class:`ChartRequest`).

        Returns
        -------
        dict
            ``{"dataset", "version", "chart", "recommendation"}``; ``recommendation`` is
            None when the caller chose the type and every column.

        Raises
        ------
        DatapilotError
            400 naming the problem, 403 without ``data:read``, 404 for a dataset or
            version that is not visible.
        """
        req = parse_chart_request(body)
        ctx.require("data:read")
        info = self.datasets.version_info(ctx, req.dataset, req.version)
        req.version = info["version"]
        facts = DatasetFacts(
            name=info["name"],
            version=info["version"],
            rows=info["rows"],
            types=dict(info["schema"]),
            labels={c["name"]: c.get("label") or c["name"] for c in info["columns"]},
            stats={c["name"]: c.get("stats") or {} for c in info["columns"]},
        )
        facts.distinct = self._distinct(ctx, req, facts)
        plan = plan_chart(req, facts)
        frame, source = self._rows(ctx, req, facts, plan)
        spec = build_spec(plan, facts, req, frame)
        spec["source"] = {"dataset": facts.name, "version": facts.version, **source}
        return {
            "dataset": facts.name,
            "version": facts.version,
            "chart": spec,
            "recommendation": plan.recommendation() if plan.reason else None,
        }

    def _distinct(self, ctx: OrgContext, req: ChartRequest, facts: DatasetFacts) -> dict:
        """Distinct values of the columns whose cardinality matters: the text, yes/no and
        integer columns named (all of them when something is to be recommended)."""
        named = [c for _, c in req.named]
        recommend = req.chart_type is None or not (req.x or req.columns)
        candidates = [
            c
            for c, kind in facts.types.items()
            if kind in ("string", "boolean", "integer") and (recommend or c in named)
        ]
        if not candidates:
            return {}
        body: dict[str, Any] = {"metrics": {c: ["count_distinct"] for c in candidates}}
        if req.filter is not None:
            body["filter"] = req.filter
        body["version"] = facts.version
        row = self.aggregates.aggregate(ctx, facts.name, body).table.to_pylist()[0]
        return {c: int(row[f"{c}_count_distinct"] or 0) for c in candidates}

    def _rows(self, ctx, req: ChartRequest, facts: DatasetFacts, plan: ChartPlan):
        if plan.type == "scatter":
            columns = [c for c in (plan.x, plan.y, plan.group) if c is not None]
            result = self.aggregates.sample(
                ctx, facts.name, columns, req.filter, SCATTER_POINTS, facts.version
            )
            frame = result.table.to_pandas()
            return frame, {
                "sample": {"rows": len(frame), "method": "uniform (reservoir)"},
                "filter": req.filter,
            }
        if plan.type == "histogram":
            return self._histogram(ctx, req, facts, plan)
        if plan.group is not None and plan.type in ("bar", "heatmap"):
            self._check_series(facts, plan)
        body = aggregation(plan, req)
        table = self.aggregates.aggregate(ctx, facts.name, body).table
        frame = table.to_pandas().rename(columns=value_columns(plan))
        if "other" in frame.columns:
            # the groups past the limit, summed up: their keys are null, marked other
            for key in (plan.x, plan.group):
                if key is not None and key != plan.time and key in frame.columns:
                    frame[key] = frame[key].astype(object).where(~frame["other"], "other")
        return frame, {"aggregation": body}

    def _check_series(self, facts: DatasetFacts, plan: ChartPlan) -> None:
        if plan.type == "bar" and plan.time is None:
            n = facts.distinct.get(plan.x)
            if n is not None and n > MAX_BARS:
                raise DatapilotError(
                    400,
                    "too_many_categories",
                    f"{plan.x!r} has {n} values; grouped bars show at most {MAX_BARS}"
                    " categories. Filter it, or leave out group to see the largest and other.",
                    field="x",
                    column=plan.x,
                    values=n,
                    limit=MAX_BARS,
                )
        n = facts.distinct.get(plan.group)
        limit = MAX_SERIES if plan.type == "bar" else 50
        if n is not None and n > limit:
            raise DatapilotError(
                400,
                "too_many_categories",
                f"{plan.group!r} has {n} values; a {plan.type} chart shows at most {limit} as"
                " its groups. Filter it, or choose a column of fewer values.",
                field="group",
                column=plan.group,
                values=n,
                limit=limit,
            )

    def _histogram(self, ctx, req: ChartRequest, facts: DatasetFacts, plan: ChartPlan):
        x = plan.x
        body: dict[str, Any] = {"metrics": {x: ["min", "max", "count"]}, "version": facts.version}
        if req.filter is not None:
            body["filter"] = req.filter
        row = self.aggregates.aggregate(ctx, facts.name, body).table.to_pylist()[0]
        low, high = row[f"{x}_min"], row[f"{x}_max"]
        bins = plan.bins or 30
        if low is None:
            frame = pd.DataFrame()
            frame.attrs.update(edges=np.array([0.0, 1.0]), counts=np.array([0]))
            return frame, {"bins": 1, "rows": 0}
        if facts.types.get(x) == "integer" and high - low + 1 <= bins:
            # whole numbers: one bin per value, centred on it
            bins, start, width = int(high - low + 1), float(low) - 0.5, 1.0
        else:
            start, width = histogram_bins(float(low), float(high), bins)
        name = _BIN
        while name in facts.types:
            name += "_"
        derive = {name: f"{x} - (({x} - ({start!r})) % {width!r})"}
        body = {
            "derive": derive,
            "group_by": [name],
            "metrics": {"*": ["count"]},
            "version": facts.version,
        }
        if req.filter is not None:
            body["filter"] = req.filter
        table = self.aggregates.aggregate(ctx, facts.name, body).table.to_pandas()
        table = table.dropna(subset=[name])
        edges, counts = histogram_counts(table[name], table["count"], start, width, bins)
        frame = pd.DataFrame()
        frame.attrs.update(edges=edges, counts=counts)
        return frame, {"bins": bins, "rows": int(counts.sum()), "aggregation": body}
