"""Every finder over one table, ranked."""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd

from ._columns import low_variance, majority, outliers
from ._model import INSIGHT_TYPES, Insight
from ._profile import Profile
from ._quality import duplicates, missing
from ._relations import category_outliers, correlations
from ._series import seasonality, series_outliers, trends_and_shifts

log = logging.getLogger(__name__)

#: insights returned at most
MAX_INSIGHTS = 30


def find_insights(profile: Profile, alpha: float = 0.01) -> list[Insight]:
    """Run every finder over ``profile`` and rank what they found, strongest first.

    A pure function of the rows it is given: no I/O, no randomness (the caller samples).

    Parameters
    ----------
    profile : Profile
        The rows and the roles of their columns.
    alpha : float
        Significance level of every test, after its multiple-testing correction.

    Returns
    -------
    list of Insight
        At most :data:`MAX_INSIGHTS`, by score; ties by :data:`INSIGHT_TYPES` order.
    """
    found: list[Insight] = []
    timings: dict[str, float] = {}

    def run(name: str, fn, *args: Any) -> list[Insight]:
        started = time.perf_counter()
        result = fn(*args)
        timings[name] = time.perf_counter() - started
        found.extend(result)
        return result

    over_time = run("trend/change_point", trends_and_shifts, profile, alpha)
    run("seasonality", seasonality, profile, alpha)
    by_value = run("outlier", outliers, profile, alpha)
    # a measure with outlying values is reported once, by row, where it reads best (its
    # outlying periods are mostly those values again); around a level shift the buckets'
    # neighbours straddle it, and the shift is the finding
    skip = {i.columns[0] for i in by_value}
    skip |= {i.columns[0] for i in over_time if i.type == "change_point"}
    run("outlier (time)", series_outliers, profile, alpha, skip)
    run("correlation", correlations, profile, alpha)
    run("category_outlier", category_outliers, profile, alpha)
    run("majority", majority, profile, alpha)
    run("low_variance", low_variance, profile)
    run("missing", missing, profile, alpha)
    run("duplicates", duplicates, profile)
    log.debug("Insight finders: %s", {k: round(v, 3) for k, v in timings.items()})
    found.sort(key=lambda i: (-i.score, INSIGHT_TYPES.index(i.type), i.columns))
    return found[:MAX_INSIGHTS]


def insights_of_frame(
    df: pd.DataFrame, types: dict[str, str] | None = None, **profile: Any
) -> list[Insight]:
    """:func:`find_insights` over a whole DataFrame (types from its dtypes when not given).

    Parameters
    ----------
    df : pandas.DataFrame
        The rows.
    types : dict, optional
        Column -> Datapilot type.
    **profile
        More :class:`Profile` fields (``labels``, ``nulls``, ``total_rows``...).
    """
    from ._profile import frame_types

    profile.setdefault("total_rows", len(df))
    return find_insights(Profile(df=df, types=types or frame_types(df), **profile))
