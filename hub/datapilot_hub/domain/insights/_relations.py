"""Findings between columns: correlated measures, a category that stands apart."""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ..charts import axis, chart, values
from ._model import Insight, num, p_text, saturate
from ._profile import Profile

ALPHA = 0.01
#: a correlation weaker than this is not reported, however significant
MIN_RHO = 0.5
#: measures compared pairwise at most (the rest are left out, and the insight says so)
MAX_MEASURES = 40
#: rows a correlation is computed on at most, and points its scatter shows
CORRELATION_ROWS = 50_000
SCATTER_POINTS = 2_000
#: a category apart from the others: its mean this many standard deviations away
MIN_CATEGORY_D = 1.0
MIN_GROUP_ROWS = 10


def correlations(profile: Profile, alpha: float = ALPHA) -> list[Insight]:
    """``correlation``: pairs of measures that rise and fall together.

    Spearman's rank correlation for every pair of measures, with the Benjamini-Hochberg
    correction across all the pairs; a pair is reported when its corrected p-value is
    under ``alpha`` and ``|rho|`` at least :data:`MIN_RHO`.
    """
    measures = profile.measures[:MAX_MEASURES]
    if len(measures) < 2:
        return []
    df = profile.df[measures].iloc[:CORRELATION_ROWS].astype(float)
    # the columns with no missing value in one call (scipy ranks each column once); a
    # column with missing values pair by pair, on the rows both have
    complete = [c for c in measures if not df[c].isna().any() and df[c].nunique() >= 3]
    tests: dict[tuple[str, str], tuple[float, float, int]] = {}
    if len(complete) >= 2 and len(df) >= 10:
        rho, p = stats.spearmanr(df[complete].to_numpy())
        rho, p = np.atleast_2d(rho), np.atleast_2d(p)
        if len(complete) == 2:
            rho = np.array([[1.0, float(rho[0, 0])], [float(rho[0, 0]), 1.0]])
            p = np.array([[0.0, float(p[0, 0])], [float(p[0, 0]), 0.0]])
        for i, j in itertools.combinations(range(len(complete)), 2):
            tests[complete[i], complete[j]] = (float(rho[i, j]), float(p[i, j]), len(df))
    pairs, results = [], []
    for a, b in itertools.combinations(measures, 2):
        if (a, b) in tests:
            r, p, n = tests[a, b]
        else:
            both = df[[a, b]].dropna()
            if len(both) < 10 or both[a].nunique() < 3 or both[b].nunique() < 3:
                continue
            test = stats.spearmanr(both[a], both[b])
            r, p, n = float(test.statistic), float(test.pvalue), len(both)
        if not math.isfinite(r):
            continue
        pairs.append((a, b, n))
        results.append((r, p))
    if not pairs:
        return []
    adjusted = multipletests([p for _, p in results], method="fdr_bh")[1]
    out = []
    for (a, b, n), (rho, _), q in zip(pairs, results, adjusted, strict=True):
        if q >= alpha or abs(rho) < MIN_RHO:
            continue
        both = df[[a, b]].dropna()
        pearson = float(np.corrcoef(both[a].astype(float), both[b].astype(float))[0, 1])
        la, lb = profile.label(a), profile.label(b)
        sentence = (
            f"{la} and {lb} {'rise together' if rho > 0 else 'move in opposite directions'}: "
            f"Spearman's rho = {num(rho)} (Pearson's r = {num(pearson)}), {p_text(q)} after "
            f"the Benjamini-Hochberg correction over {num(len(pairs))} pairs, on {num(n)} rows"
            f"{profile.sample_note(n) if profile.sampled else ''}."
        )
        shown = both.iloc[:SCATTER_POINTS]
        out.append(
            Insight(
                type="correlation",
                columns=[a, b],
                score=abs(rho),
                test="Spearman's rank correlation (scipy); Benjamini-Hochberg over all pairs",
                statistic={"name": "rho", "value": rho},
                p_value=float(q),
                effect_size={"name": "Spearman's rho", "value": rho},
                sentence=sentence,
                chart=chart(
                    "scatter",
                    f"{la} against {lb}",
                    [{"name": f"{lb} by {la}", "x": values(shown[a]), "y": values(shown[b])}],
                    x=axis(a, la, "quantitative"),
                    y=axis(b, lb, "quantitative"),
                    points_shown=len(shown),
                ),
                sample_rows=n,
                details={"pearson": pearson, "pairs_tested": len(pairs)},
            )
        )
    return out


def category_outliers(profile: Profile, alpha: float = ALPHA) -> list[Insight]:
    """``category_outlier``: one category whose mean of a measure is far from the others'.

    For every (category column, measure) pair with 4 or more categories: the category
    whose mean is furthest from the rest, by Cohen's d, tested against the rest with
    Welch's t-test (Bonferroni over the categories it was picked from, then Holm across
    the pairs). Reported when it holds and d is at least
    :data:`MIN_CATEGORY_D`, and that category's mean also stands apart from the other
    categories' means (robust z of 3 or more).
    """
    candidates = []
    measures = profile.measures
    for column in profile.categories:
        if not measures:
            break
        frame = profile.df[[column, *measures]]
        frame = frame[frame[column].notna()]
        # every measure's per-category mean, variance and count in one pass
        grouped = frame.groupby(column, observed=True)[measures].agg(["mean", "var", "count"])
        for measure in measures:
            stats_ = grouped[measure]
            stats_ = stats_[stats_["count"] >= MIN_GROUP_ROWS]
            if len(stats_) < 4:
                continue
            means = stats_["mean"]
            x = frame.loc[frame[column].isin(stats_.index), measure].dropna().astype(float)
            # the rest of the rows, from the totals: one pass however many categories
            total_n, total_sum, total_sq = len(x), float(x.sum()), float((x * x).sum())
            best = None
            for category, row in stats_.iterrows():
                n_in, mean_in, var_in = row["count"], row["mean"], row["var"]
                n_out = total_n - n_in
                sum_out = total_sum - mean_in * n_in
                sq_out = total_sq - (var_in * (n_in - 1) + n_in * mean_in**2)
                mean_out = sum_out / n_out
                var_out = max(0.0, (sq_out - n_out * mean_out**2) / (n_out - 1))
                pooled = math.sqrt((var_in + var_out) / 2)
                if pooled == 0:
                    continue
                d = (mean_in - mean_out) / pooled
                if best is None or abs(d) > abs(best[1]):
                    best = (
                        category,
                        d,
                        (mean_in, math.sqrt(var_in), n_in),
                        (mean_out, math.sqrt(var_out), n_out),
                    )
            if best is None:
                continue
            category, d, inside, rest = best
            test = stats.ttest_ind_from_stats(*inside, *rest, equal_var=False)
            others = means.drop(category)
            spread = 1.4826 * float(np.median(np.abs(others - others.median())))
            spread = spread or float(others.std()) or 1e-12
            apart = abs(means[category] - others.median()) / spread
            # the furthest of k categories was picked: Bonferroni over them
            p = min(1.0, float(test.pvalue) * len(stats_))
            candidates.append((column, measure, category, d, test, apart, means, total_n, p))
    if not candidates:
        return []
    adjusted = multipletests([c[-1] for c in candidates], method="holm")[1]
    out = []
    for (column, measure, category, d, test, apart, means, n, _), p in zip(
        candidates, adjusted, strict=True
    ):
        if p >= alpha or abs(d) < MIN_CATEGORY_D or apart < 3:
            continue
        lc, lm = profile.label(column), profile.label(measure)
        rest_mean = float(means.drop(category).mean())
        sentence = (
            f"{lc} {category!s} has a mean {lm} of {num(means[category])}, against "
            f"{num(rest_mean)} on average for the other {num(len(means) - 1)} values of "
            f"{lc} (Cohen's d = {num(abs(d))}; Welch's t = {num(abs(test.statistic))}, "
            f"{p_text(float(p))}){profile.sample_note()}."
        )
        order = means.sort_values(ascending=False)
        colors = ["#D55E00" if k == category else "#0072B2" for k in order.index]
        out.append(
            Insight(
                type="category_outlier",
                columns=[column, measure],
                score=saturate(abs(d), 2),
                test="Welch's t-test of one category against the rest; Holm correction",
                statistic={"name": "t", "value": abs(float(test.statistic))},
                p_value=float(p),
                effect_size={"name": "Cohen's d", "value": abs(d)},
                sentence=sentence,
                chart=chart(
                    "bar",
                    f"Mean {lm} by {lc}: {category!s} stands apart",
                    [
                        {
                            "name": f"mean {lm}",
                            "x": [str(k) for k in order.index],
                            "y": values(order.to_numpy()),
                            "colors": colors,
                        }
                    ],
                    x=axis(column, lc, "nominal"),
                    y=axis(measure, f"Mean of {lm}", "quantitative"),
                ),
                sample_rows=n,
                details={
                    "category": str(category),
                    "mean": float(means[category]),
                    "others_mean": rest_mean,
                    "robust_z_among_means": apart,
                },
            )
        )
    return out
