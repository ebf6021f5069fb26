"""Automatic insights: named statistical tests over a dataset, ranked, each with a chart.

The finders are pure functions of a :class:`Profile` (a DataFrame and the roles of its
columns), testable alone; :class:`InsightService` samples a dataset version, runs them
and caches the answer per version; the optional :class:`Narrator` summarises them.
"""

from ._find import MAX_INSIGHTS, find_insights, insights_of_frame
from ._model import INSIGHT_TYPES, Insight
from ._narrator import Narrator, Summary, cited_numbers
from ._profile import Profile, frame_types
from ._read import Read, read_version
from ._service import REVISION, InsightService

__all__ = [
    "INSIGHT_TYPES",
    "MAX_INSIGHTS",
    "REVISION",
    "Insight",
    "InsightService",
    "Narrator",
    "Profile",
    "Read",
    "Summary",
    "cited_numbers",
    "find_insights",
    "frame_types",
    "insights_of_frame",
    "read_version",
]
