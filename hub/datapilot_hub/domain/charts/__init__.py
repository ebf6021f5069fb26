"""Charts: specs built from data, the recommendation of a chart type, and rendering."""

from ._build import axis, chart, values

__all__ = ["axis", "chart", "values"]
