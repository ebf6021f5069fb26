"""Findings about one column: outlying values, a dominant category, (almost) no variance."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..charts import axis, chart, values
from ._model import Insight, num, p_text, pct, saturate
from ._profile import Profile

ALPHA = 0.01
#: more outliers than this share of the values is a heavy tail, not a few outliers
MAX_OUTLIER_SHARE = 0.01
#: how far (in robust standard deviations) outliers must stand from the other values
MIN_GAP = 1.5
#: the most common value's share that makes a column (almost) constant
QUASI_CONSTANT = 0.95
#: pie slices shown before the rest is grouped as "other"
SLICES = 6


def outliers(profile: Profile, alpha: float = ALPHA) -> list[Insight]:
    """``outlier``: a few values far from the rest of a measure.

    Robust z-score (median and MAD, the Iglewicz-Hoaglin modified z) against a threshold
    that keeps the chance of flagging any value of normal data at ``alpha`` (Bonferroni
    over the values). A skewed positive measure (amounts, durations) is looked at on a
    log scale, where its ordinary large values are not outliers. Skew is measured on the
    octiles (Hinkley's), which the outliers themselves do not move. The values beyond the
    threshold on one side must also stand apart from the rest (:data:`MIN_GAP` robust
    standard deviations from the nearest value within it): the far end of a long tail
    is not a few outliers.
    """
    out = []
    for measure in profile.measures:
        x = profile.df[measure].dropna().astype(float)
        n = len(x)
        if n < 20:
            continue
        scale = "linear"
        values_ = x.to_numpy()
        if values_.min() > 0 and _octile_skew(values_) > 0.1:
            values_, scale = np.log(values_), "log"
        median = float(np.median(values_))
        mad = float(stats.median_abs_deviation(values_))
        if mad == 0:
            continue
        z = 0.6745 * (values_ - median) / mad
        threshold = max(3.5, float(stats.norm.isf(alpha / (2 * n))))
        flagged = apart(z, threshold)
        if len(flagged) == 0 or len(flagged) > max(3, MAX_OUTLIER_SHARE * n):
            continue
        order = flagged[np.argsort(-np.abs(z[flagged]))]
        zmax = float(np.abs(z[order[0]]))
        p = min(1.0, n * 2 * float(stats.norm.sf(zmax)))
        label = profile.label(measure)
        rows = [int(r) + 1 for r in x.index[order]]
        shown = ", ".join(
            f"{num(x.iloc[i])} (row {num(r)})" for i, r in zip(order[:5], rows[:5], strict=True)
        )
        typical = float(np.median(x))
        sentence = (
            f"{num(len(flagged))} value{'s' if len(flagged) > 1 else ''} of {label} "
            f"{'lie' if len(flagged) > 1 else 'lies'} far from the others (median "
            f"{num(typical)}): {shown}; robust z up to {num(zmax)} against a threshold of "
            f"{num(threshold)}{' on a log scale' if scale == 'log' else ''}"
            f"{profile.sample_note()}."
        )
        counts, edges = np.histogram(x.to_numpy(), bins=40)
        out.append(
            Insight(
                type="outlier",
                columns=[measure],
                score=saturate(zmax / threshold - 1, 1.5),
                test="robust z-score (median and MAD), Bonferroni threshold",
                statistic={"name": "robust z", "value": zmax},
                p_value=p,
                effect_size=None,
                sentence=sentence,
                chart=chart(
                    "histogram",
                    f"{label}: outlying values",
                    [{"name": label, "edges": values(edges), "counts": values(counts)}],
                    x=axis(measure, label, "quantitative"),
                    y=axis(None, "Rows", "quantitative"),
                    annotations=[
                        {
                            "kind": "points",
                            "x": values(x.iloc[order]),
                            "y": [0] * len(order),
                            "label": "outliers",
                        }
                    ],
                ),
                sample_rows=n,
                details={
                    "kind": "distribution",
                    "rows": rows,
                    "values": [float(v) for v in x.iloc[order]],
                    "median": typical,
                    "threshold": threshold,
                    "scale": scale,
                },
            )
        )
    return out


def apart(z: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the values beyond ``threshold`` on a side that stands apart."""
    out = []
    for side in (1, -1):
        beyond = np.flatnonzero(side * z > threshold)
        within = side * z[side * z <= threshold]
        if len(beyond) and len(within) and (side * z[beyond]).min() - within.max() >= MIN_GAP:
            out.extend(beyond)
    return np.array(sorted(out), dtype=int)


def _octile_skew(x: np.ndarray) -> float:
    q125, q50, q875 = np.quantile(x, [0.125, 0.5, 0.875])
    return float((q875 + q125 - 2 * q50) / (q875 - q125)) if q875 > q125 else 0.0


def _share_chart(profile: Profile, column: str, counts: pd.Series, title: str) -> dict:
    top = counts.iloc[:SLICES]
    labels = [str(v) for v in top.index]
    shares = list(top.to_numpy())
    rest = int(counts.iloc[SLICES:].sum())
    if rest:
        labels.append("other")
        shares.append(rest)
    return chart("pie", title, [{"name": "rows", "labels": labels, "values": values(shares)}])


def majority(profile: Profile, alpha: float = ALPHA) -> list[Insight]:
    """``majority``: one value of a text or yes/no column holds most rows.

    Reported when the most common value has at least half of the rows and 1.5 times its
    share under an even split (three quarters of a yes/no column); tested against that
    even split with a one-sided binomial test.
    """
    out = []
    for column in profile.df.columns:
        if profile.types.get(column) not in ("string", "boolean"):
            continue
        counts = profile.df[column].value_counts(dropna=True)
        k = len(counts)
        if k < 2:
            continue
        n = int(counts.sum())
        top = counts.index[0]
        share = counts.iloc[0] / n
        if share < max(0.5, 1.5 / k):
            continue
        test = stats.binomtest(int(counts.iloc[0]), n, 1 / k, alternative="greater")
        if test.pvalue >= alpha:
            continue
        label = profile.label(column)
        sentence = (
            f"{label} is {top!s} in {pct(share)} of the rows ({num(counts.iloc[0])} of "
            f"{num(n)}) where an even split of its {num(k)} values would give "
            f"{pct(1 / k)}; binomial test {p_text(test.pvalue)}{profile.sample_note()}."
        )
        out.append(
            Insight(
                type="majority",
                columns=[column],
                score=float((share - 1 / k) / (1 - 1 / k)),
                test="one-sided binomial test against an even split (scipy)",
                statistic={"name": "share", "value": share},
                p_value=float(test.pvalue),
                effect_size={"name": "share above an even split", "value": share - 1 / k},
                sentence=sentence,
                chart=_share_chart(profile, column, counts, f"{label}: {top!s} dominates"),
                sample_rows=n,
                details={"value": str(top), "share": share, "distinct": k},
            )
        )
    return out


def low_variance(profile: Profile) -> list[Insight]:
    """``low_variance``: a column with one value, or one value in 95% of its rows, or
    numbers that barely vary (a coefficient of variation under 0.1%)."""
    out = []
    for column in profile.df.columns:
        kind = profile.types.get(column)
        x = profile.df[column].dropna()
        n = len(x)
        if n < 20 or kind in ("date", "datetime"):
            continue
        counts = x.value_counts()
        share = counts.iloc[0] / n
        label = profile.label(column)
        cv = None
        if kind in ("integer", "number") and len(counts) > 1:
            mean = float(x.astype(float).mean())
            cv = float(x.astype(float).std() / abs(mean)) if mean else None
        if len(counts) == 1:
            sentence = f"{label} has one value, {counts.index[0]!s}, in all {num(n)} rows"
            score, stat = 0.5, {"name": "distinct values", "value": 1}
        elif kind in ("integer", "number") and share >= QUASI_CONSTANT:
            sentence = (
                f"{label} is {counts.index[0]!s} in {pct(share)} of the rows "
                f"({num(counts.iloc[0])} of {num(n)})"
            )
            score, stat = (
                0.3 + 0.2 * share,
                {"name": "share of the most common value", "value": share},
            )
        elif cv is not None and cv < 1e-3:
            sentence = (
                f"{label} barely varies: its standard deviation is {pct(cv)} of its mean "
                f"{num(x.astype(float).mean())}"
            )
            score, stat = 0.4, {"name": "coefficient of variation", "value": cv}
        else:
            continue
        top = counts.iloc[:10]
        out.append(
            Insight(
                type="low_variance",
                columns=[column],
                score=score,
                test="share of the most common value; coefficient of variation",
                statistic=stat,
                sentence=sentence + f"{profile.sample_note()}.",
                chart=chart(
                    "bar",
                    f"{label}: most common values",
                    [{"name": label, "x": [str(v) for v in top.index], "y": values(top)}],
                    x=axis(column, label, "nominal"),
                    y=axis(None, "Rows", "quantitative"),
                ),
                sample_rows=n,
                details={"most_common": str(counts.index[0]), "share": share, "cv": cv},
            )
        )
    return out
