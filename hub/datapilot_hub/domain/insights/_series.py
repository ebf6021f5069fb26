"""Findings over time: trends, level shifts, cycles and outlying periods.

Each measure is looked at as its mean per time bucket (:meth:`Profile.series`). A series
that rises steadily and one that jumps once both fail a test of "no change": which of
the two it is decides between ``trend`` and ``change_point``, by which model fits better
(a line or steps, compared by BIC), so one pattern is not reported twice under two names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymannkendall
import ruptures
from scipy import stats
from statsmodels.tsa.seasonal import STL

from ..charts import axis, chart, values
from ._columns import apart
from ._model import Insight, iso, num, p_text, saturate, signed
from ._profile import Profile, Series

ALPHA = 0.01
#: the fewest buckets a trend or a change point is looked for in
MIN_POINTS = 12
#: a trend must move the series by this many residual standard deviations over its span
MIN_TREND_EFFECT = 1.0
#: a level shift must be this many standard deviations (Cohen's d)
MIN_SHIFT = 1.0
#: cycles looked for, by bucket: (period in buckets, name of the cycle, phase namer)
CYCLES = {
    "hour": [(24, "daily")],
    "day": [(7, "weekly")],
    "week": [(52, "yearly")],
    "month": [(12, "yearly")],
    "quarter": [(4, "yearly")],
}
MIN_SEASONAL_STRENGTH = 0.3


@dataclass
class _Fit:
    """The two models of a series' change: a line, and steps at the change points."""

    line_bic: float
    steps_bic: float
    breaks: list[int]
    line: tuple[float, float]  # intercept, slope per bucket
    positions: int  # where a break could have been


def _bic(rss: float, n: int, params: int) -> float:
    return n * math.log(max(rss, 1e-12) / n) + params * math.log(n)


def _fit(y: np.ndarray) -> _Fit:
    n = len(y)
    t = np.arange(n, dtype=float)
    slope, intercept = np.polyfit(t, y, 1)
    line_rss = float(np.sum((y - (intercept + slope * t)) ** 2))
    # noise level from successive differences: a level shift or a trend barely moves it
    sigma = 1.4826 * np.median(np.abs(np.diff(y) - np.median(np.diff(y)))) / math.sqrt(2)
    sigma = max(float(sigma), 1e-9 * (np.abs(y).max() + 1))
    min_size = max(5, n // 20)
    # PELT over the l2 cost (a linear kernel is the same cost, in ruptures' C code: 500
    # times faster than its Python "l2" model on 1,500 points)
    algo = ruptures.KernelCPD(kernel="linear", min_size=min_size).fit(y.reshape(-1, 1))
    # a BIC-type penalty: each break adds a mean and a position
    breaks = algo.predict(pen=3 * sigma**2 * math.log(n))[:-1]
    edges = [0, *breaks, n]
    steps_rss = float(
        sum(np.sum((y[a:b] - y[a:b].mean()) ** 2) for a, b in zip(edges, edges[1:], strict=False))
    )
    return _Fit(
        line_bic=_bic(line_rss, n, 3),
        steps_bic=_bic(steps_rss, n, 2 * len(breaks) + 2),
        breaks=breaks,
        line=(float(intercept), float(slope)),
        positions=max(1, n - 2 * min_size + 1),
    )


def _clean(series: Series) -> tuple[pd.Series, np.ndarray] | None:
    s = series.values.dropna()
    if len(s) < MIN_POINTS or s.nunique() < 3:
        return None
    return s, s.to_numpy(dtype=float)


def _line_chart(profile: Profile, measure: str, series: Series, s: pd.Series, title: str, **kw):
    return chart(
        "line",
        title,
        [{"name": profile.label(measure), "x": values(s.index), "y": values(s.to_numpy())}],
        x=axis(profile.time, profile.label(profile.time), "temporal"),
        y=axis(measure, f"Mean of {profile.label(measure)} per {series.bucket}", "quantitative"),
        **kw,
    )


def trends_and_shifts(profile: Profile, alpha: float = ALPHA) -> list[Insight]:
    """``trend`` (Mann-Kendall, Sen's slope) and ``change_point`` (PELT, Welch's t-test)
    for every measure over time.

    The Mann-Kendall p-values are corrected for the number of measures (Holm); a change
    point's for the positions searched and the measures (Bonferroni).
    """
    candidates = []
    for measure in profile.measures:
        series = profile.series(measure)
        if series is None or (cleaned := _clean(series)) is None:
            continue
        s, y = cleaned
        fit = _fit(y)
        mk = pymannkendall.original_test(y, alpha=alpha)
        candidates.append((measure, series, s, y, fit, mk))
    if not candidates:
        return []
    from statsmodels.stats.multitest import multipletests

    adjusted = multipletests([c[5].p for c in candidates], method="holm")[1]
    out = []
    for (measure, series, s, y, fit, mk), p_adj in zip(candidates, adjusted, strict=True):
        if fit.steps_bic < fit.line_bic and fit.breaks:
            # Bonferroni over the measures as well
            found = _change_point(profile, measure, series, s, y, fit, alpha / len(candidates))
        else:
            found = _trend(profile, measure, series, s, y, mk, float(p_adj), alpha)
        if found is not None:
            out.append(found)
    return out


def _trend(profile, measure, series, s, y, mk, p_adj, alpha) -> Insight | None:
    if p_adj >= alpha or mk.slope == 0:
        return None
    n = len(y)
    t = np.arange(n)
    fitted = mk.intercept + mk.slope * t
    resid = y - fitted
    spread = 1.4826 * float(np.median(np.abs(resid - np.median(resid)))) or float(resid.std())
    change = mk.slope * (n - 1)
    effect = abs(change) / spread if spread > 0 else math.inf
    if effect < MIN_TREND_EFFECT:
        return None
    label = profile.label(measure)
    direction = "rises" if mk.slope > 0 else "falls"
    start, end = iso(s.index[0]), iso(s.index[-1])
    sentence = (
        f"{label} {direction} by {num(abs(mk.slope))} per {series.bucket} (Sen's slope), "
        f"{num(abs(change))} from {start} to {end}, {num(effect)} times the spread around the "
        f"trend; Mann-Kendall z = {num(mk.z)}, {p_text(p_adj)} over {num(n)} "
        f"{series.adjective} means{profile.sample_note()}."
    )
    title = f"{label} {direction} over time"
    ends = [s.index[0], s.index[-1]]
    return Insight(
        type="trend",
        columns=[measure, profile.time],
        score=saturate(effect, 4),
        test="Mann-Kendall trend test (pymannkendall) with Sen's slope; Holm correction",
        statistic={"name": "z", "value": mk.z},
        p_value=p_adj,
        effect_size={"name": "change over the span / residual spread", "value": effect},
        sentence=sentence,
        chart=_line_chart(
            profile,
            measure,
            series,
            s,
            title,
            annotations=[
                {
                    "kind": "line",
                    "x": values(ends),
                    "y": values([fitted[0], fitted[-1]]),
                    "label": "Sen's slope",
                }
            ],
        ),
        sample_rows=profile.rows,
        details={
            "slope": mk.slope,
            "per": series.bucket,
            "change": change,
            "tau": mk.Tau,
            "from": start,
            "to": end,
            "points": n,
        },
    )


def _change_point(profile, measure, series, s, y, fit, alpha) -> Insight | None:
    edges = [0, *fit.breaks, len(y)]
    best = None
    for i, b in enumerate(fit.breaks):
        before, after = y[edges[i] : b], y[b : edges[i + 2]]
        pooled = math.sqrt((before.var(ddof=1) + after.var(ddof=1)) / 2)
        d = (after.mean() - before.mean()) / pooled if pooled > 0 else math.inf
        if best is None or abs(d) > abs(best[1]):
            best = (b, d, before, after)
    b, d, before, after = best
    if abs(d) < MIN_SHIFT:
        return None
    test = stats.ttest_ind(before, after, equal_var=False)
    # the break was picked as the best of every position searched: Bonferroni over them
    # (a real shift's p-value is so small that this costs it nothing)
    p = min(1.0, float(test.pvalue) * fit.positions)
    if p >= alpha:
        return None
    label = profile.label(measure)
    when = iso(s.index[b])
    direction = "up" if after.mean() > before.mean() else "down"
    others = [iso(s.index[x]) for x in fit.breaks if x != b]
    sentence = (
        f"{label} shifts {direction} on {when}: its {series.adjective} mean goes from "
        f"{num(before.mean())} to {num(after.mean())} (Cohen's d = {num(abs(d))}; Welch's "
        f"t = {num(abs(test.statistic))}, {p_text(p)})"
        + (f"; other shifts on {', '.join(others)}" if others else "")
        + f"{profile.sample_note()}."
    )
    segments = []
    for a, z in zip(edges, edges[1:], strict=False):
        segments.append(
            {
                "kind": "line",
                "x": values([s.index[a], s.index[z - 1]]),
                "y": values([y[a:z].mean()] * 2),
                "label": "segment mean",
            }
        )
    return Insight(
        type="change_point",
        columns=[measure, profile.time],
        score=saturate(abs(d), 2),
        test="PELT change-point search (ruptures, l2 cost, BIC-type penalty); Welch's t-test,"
        " Bonferroni over the positions searched",
        statistic={"name": "t", "value": abs(test.statistic)},
        p_value=p,
        effect_size={"name": "Cohen's d", "value": abs(d)},
        sentence=sentence,
        chart=_line_chart(
            profile,
            measure,
            series,
            s,
            f"{label} shifts on {when}",
            annotations=[{"kind": "vline", "x": when, "label": "level shift"}, *segments],
        ),
        sample_rows=profile.rows,
        details={
            "date": when,
            "row_bucket": int(b),
            "before": before.mean(),
            "after": after.mean(),
            "other_dates": others,
        },
    )


def _phase_names(index: pd.DatetimeIndex, unit: str, period: int) -> tuple[list, list[str]]:
    if unit == "day" and period == 7:
        return list(index.day_of_week), [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ]
    if unit == "hour":
        return list(index.hour), [f"{h:02d}:00" for h in range(24)]
    if unit == "month":
        return list(index.month - 1), [
            pd.Timestamp(2000, m, 1).strftime("%B") for m in range(1, 13)
        ]
    if unit == "quarter":
        return list(index.quarter - 1), ["Q1", "Q2", "Q3", "Q4"]
    weeks = list(np.clip(index.isocalendar().week.to_numpy() - 1, 0, 51))
    return weeks, [f"week {w + 1}" for w in range(52)]


def seasonality(profile: Profile, alpha: float = ALPHA) -> list[Insight]:
    """``seasonality``: a cycle (weekly in daily data, yearly in monthly...) by STL's
    seasonal strength and a Kruskal-Wallis test across the cycle's phases."""
    out = []
    unit = profile.unit
    if unit is None or unit not in CYCLES:
        return out
    measures = profile.measures
    for measure in measures:
        series = profile.series(measure)
        if series is None:
            continue
        for period, name in CYCLES[unit]:
            found = _cycle(profile, measure, series, period, name, alpha / max(1, len(measures)))
            if found is not None:
                out.append(found)
    return out


def _cycle(profile, measure, series, period, name, alpha) -> Insight | None:
    s = series.values
    if s.notna().sum() < 3 * period or s.isna().mean() > 0.2:
        return None
    s = s.interpolate(limit_direction="both")
    fit = STL(s.to_numpy(dtype=float), period=period, robust=True).fit()
    resid, seasonal = fit.resid, fit.seasonal
    total = np.var(seasonal + resid)
    strength = max(0.0, 1 - np.var(resid) / total) if total > 0 else 0.0
    detrended = s.to_numpy(dtype=float) - fit.trend
    phases, names = _phase_names(s.index, series.unit, period)
    groups: dict[int, list[float]] = {}
    for phase, v in zip(phases, detrended, strict=True):
        groups.setdefault(int(phase), []).append(v)
    if len(groups) < 2:
        return None
    test = stats.kruskal(*groups.values())
    if test.pvalue >= alpha or strength < MIN_SEASONAL_STRENGTH:
        return None
    means = {k: float(np.mean(v)) for k, v in sorted(groups.items())}
    high = max(means, key=means.get)
    low = min(means, key=means.get)
    label = profile.label(measure)
    sentence = (
        f"{label} follows a {name} cycle: highest on {names[high]} ({signed(means[high])} "
        f"against the trend), lowest on {names[low]} "
        f"({num(means[low])}); seasonal strength {num(strength)} (STL), Kruskal-Wallis "
        f"H = {num(test.statistic)}, {p_text(test.pvalue)} over {num(len(s))} "
        f"{series.adjective} means{profile.sample_note()}."
    )
    return Insight(
        type="seasonality",
        columns=[measure, profile.time],
        score=float(strength),
        test="STL decomposition (statsmodels) and Kruskal-Wallis test across the cycle's phases",
        statistic={"name": "H", "value": test.statistic},
        p_value=float(test.pvalue),
        effect_size={"name": "seasonal strength", "value": strength},
        sentence=sentence,
        chart=chart(
            "bar",
            f"{label}: its {name} cycle",
            [{"name": label, "x": [names[k] for k in means], "y": values(means.values())}],
            x=axis(profile.time, names_axis(series.unit, period), "nominal"),
            y=axis(measure, f"{label} against its trend (mean)", "quantitative"),
        ),
        sample_rows=profile.rows,
        details={
            "period": period,
            "cycle": name,
            "highest": names[high],
            "lowest": names[low],
            "by_phase": {names[k]: v for k, v in means.items()},
        },
    )


def _robust_z(x: np.ndarray) -> np.ndarray | None:
    mad = float(np.median(np.abs(x - np.median(x))))
    return None if mad == 0 else 0.6745 * (x - np.median(x)) / mad


def _neighbours_median(y: np.ndarray, half: int = 3) -> np.ndarray:
    """For each point, the median of the ``half`` points on each side (itself excluded)."""
    out = np.empty_like(y)
    for i in range(len(y)):
        around = np.concatenate([y[max(0, i - half) : i], y[i + 1 : i + 1 + half]])
        out[i] = np.median(around)
    return out


def names_axis(unit: str, period: int) -> str:
    """The label of a cycle's phases: weekday, hour of the day, month..."""
    return {
        "day": "Day of the week",
        "hour": "Hour of the day",
        "month": "Month",
        "quarter": "Quarter",
        "week": "Week of the year",
    }[unit]


def series_outliers(
    profile: Profile, alpha: float = ALPHA, skip: set[str] | None = None
) -> list[Insight]:
    """``outlier`` in time: buckets whose mean is far from their neighbours'.

    The residual (after a Theil-Sen line is taken out) from the median of the 6 buckets
    around it (itself left out: with it, a seventh of the residuals would be exactly 0
    and the spread look smaller than it is), scaled by the square root of the bucket's
    rows (a mean of few rows varies more), as a robust z-score against a Bonferroni
    threshold, standing apart from the other buckets (as :func:`._columns.outliers` asks
    of values). Measures in ``skip`` are left out.
    """
    out = []
    for measure in profile.measures:
        if skip and measure in skip:
            continue
        series = profile.series(measure)
        if series is None:
            continue
        s = series.values.dropna()
        if len(s) < 2 * MIN_POINTS:
            continue
        y = s.to_numpy(dtype=float)
        # a steady slope first (Theil-Sen): at the ends of the series the neighbours are
        # all on one side, and would read a trend as outliers
        slope, intercept, *_ = stats.theilslopes(y)
        y = y - (intercept + slope * np.arange(len(y)))
        resid = y - _neighbours_median(y)
        weight = np.sqrt(series.counts.reindex(s.index).to_numpy(dtype=float))
        z, z_weighted = _robust_z(resid), _robust_z(resid * weight)
        if z is None or z_weighted is None:
            continue
        threshold = max(3.5, float(stats.norm.isf(alpha / (2 * len(s)))))
        # far out both as a mean and for the rows it has: a bucket of few rows is not an
        # outlier for being noisy, nor a bucket of many for a small wobble
        z = np.where(np.abs(z) < np.abs(z_weighted), z, z_weighted)
        flagged = apart(z, threshold)
        if len(flagged) == 0 or len(flagged) > max(3, 0.02 * len(s)):
            continue
        top = flagged[np.argsort(-np.abs(z[flagged]))]
        zmax = float(np.abs(z[top[0]]))
        p = min(1.0, len(s) * 2 * float(stats.norm.sf(zmax)))
        label = profile.label(measure)
        listed = ", ".join(f"{iso(s.index[i])} ({num(s.iloc[i])})" for i in top[:5])
        sentence = (
            f"{num(len(flagged))} {series.adjective} mean{'s' if len(flagged) > 1 else ''} of "
            f"{label} stand{'s' if len(flagged) == 1 else ''} out from {series.bucket}s around "
            f"them: {listed}; robust z up to {num(zmax)} against a threshold of "
            f"{num(threshold)}{profile.sample_note()}."
        )
        out.append(
            Insight(
                type="outlier",
                columns=[measure, profile.time],
                score=saturate(zmax / threshold - 1, 1.5),
                test="robust z-score of the residual from the median of the 6 buckets around"
                " (weighted by rows per bucket), Bonferroni threshold",
                statistic={"name": "robust z", "value": zmax},
                p_value=p,
                effect_size=None,
                sentence=sentence,
                chart=_line_chart(
                    profile,
                    measure,
                    series,
                    s,
                    f"{label}: outlying {series.bucket}s",
                    annotations=[
                        {
                            "kind": "points",
                            "x": values(s.index[flagged]),
                            "y": values(s.to_numpy()[flagged]),
                            "label": "outliers",
                        }
                    ],
                ),
                sample_rows=profile.rows,
                details={
                    "kind": "time_series",
                    "dates": [iso(s.index[i]) for i in top],
                    "values": [float(s.iloc[i]) for i in top],
                    "threshold": threshold,
                },
            )
        )
    return out
