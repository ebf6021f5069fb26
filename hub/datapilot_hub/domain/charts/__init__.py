"""Charts: the recommendation of a chart for some columns, and its spec built from data.

:mod:`datapilot_charts` defines the spec and draws it; this package decides what to draw
(:func:`plan_chart`), what aggregation gives its rows (:func:`aggregation`) and turns
those rows into the spec (:func:`build_spec`).
"""

from ._build import axis, chart, values
from ._generate import aggregation, build_spec, histogram_bins, histogram_counts, value_columns
from ._recommend import MAX_SLICES, ChartPlan, DatasetFacts, check_columns, plan_chart
from ._request import AGGREGATIONS, ChartRequest, parse_chart_request
from ._service import ChartService

__all__ = [
    "AGGREGATIONS",
    "MAX_SLICES",
    "ChartPlan",
    "ChartRequest",
    "ChartService",
    "DatasetFacts",
    "aggregation",
    "axis",
    "build_spec",
    "chart",
    "check_columns",
    "histogram_bins",
    "histogram_counts",
    "parse_chart_request",
    "plan_chart",
    "value_columns",
    "values",
]
