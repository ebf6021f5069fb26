"""Findings about the data's quality: missing values and their patterns, repeated rows."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ..charts import axis, chart, values
from ._model import Insight, num, p_text, pct, saturate
from ._profile import Profile

ALPHA = 0.01
#: a column missing in this share of its rows or more is reported
MIN_MISSING = 0.05
#: missing indicators this correlated (phi) make columns "missing together"
MIN_PHI = 0.8


def missing(profile: Profile, alpha: float = ALPHA) -> list[Insight]:
    """``missing``: columns with many missing values, and columns missing together.

    A column's share of missing values is exact when the catalog counted them (every
    version records its nulls per column). Columns missing in the same rows are found by
    the phi coefficient of their missing indicators, tested with a chi-square test of
    independence (Holm across the pairs), and reported as one group.
    """
    out = []
    shares = {}
    for column in profile.df.columns:
        nulls, rows = profile.null_count(column)
        if rows:
            shares[column] = (nulls / rows, nulls, rows)
    overview = sorted((c for c in shares if shares[c][1]), key=lambda c: -shares[c][0])
    for column in overview:
        share, nulls, rows = shares[column]
        if share < MIN_MISSING:
            continue
        label = profile.label(column)
        exact = profile.nulls is not None and column in profile.nulls
        if share == 1:
            sentence = f"{label} has no value in any of its {num(rows)} rows"
        else:
            sentence = (
                f"{label} is missing in {pct(share)} of the rows ({num(nulls)} of {num(rows)})"
            )
        out.append(
            Insight(
                type="missing",
                columns=[column],
                score=float(share),
                test="count of missing values" + (" (exact, from the catalog)" if exact else ""),
                statistic={"name": "missing share", "value": share},
                sentence=sentence + ("" if exact else profile.sample_note()) + ".",
                chart=_overview_chart(profile, overview, shares, {column}),
                sample_rows=rows,
                details={"missing": nulls, "rows": rows, "exact": exact},
            )
        )
    out.extend(_together(profile, overview, shares, alpha))
    return out


def _overview_chart(profile, overview, shares, highlight) -> dict:
    shown = overview[:20]
    return chart(
        "bar",
        "Missing values by column",
        [
            {
                "name": "missing",
                "x": [profile.label(c) for c in shown],
                "y": values(100 * shares[c][0] for c in shown),
                "colors": ["#D55E00" if c in highlight else "#0072B2" for c in shown],
            }
        ],
        x=axis(None, "Column", "nominal"),
        y=axis(None, "Missing (% of rows)", "quantitative"),
    )


def _together(profile: Profile, overview, shares, alpha) -> list[Insight]:
    df = profile.df
    columns = [c for c in overview if 0 < df[c].isna().mean() < 1]
    if len(columns) < 2:
        return []
    flags = {c: df[c].isna().to_numpy() for c in columns}
    pairs, results = [], []
    for a, b in itertools.combinations(columns, 2):
        table = np.array(
            [
                [np.sum(flags[a] & flags[b]), np.sum(flags[a] & ~flags[b])],
                [np.sum(~flags[a] & flags[b]), np.sum(~flags[a] & ~flags[b])],
            ]
        )
        if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
            continue
        chi2, p, _, _ = stats.chi2_contingency(table)
        phi = float(stats.contingency.association(table, method="cramer"))
        if table[0, 0] * table[1, 1] < table[0, 1] * table[1, 0]:
            phi = -phi  # missing in opposite rows: not "together"
        pairs.append((a, b, table, phi, chi2))
        results.append(p)
    if not pairs:
        return []
    adjusted = multipletests(results, method="holm")[1]
    linked = [
        (pair, p)
        for pair, p in zip(pairs, adjusted, strict=True)
        if p < alpha and pair[3] >= MIN_PHI
    ]
    # columns missing together, as groups (connected pairs)
    groups: list[set[str]] = []
    for (a, b, *_), _p in linked:
        touching = [g for g in groups if a in g or b in g]
        merged = {a, b}.union(*touching)
        groups = [g for g in groups if g not in touching] + [merged]
    out = []
    for group in groups:
        members = [c for c in columns if c in group]
        inside = [(pair, p) for pair, p in linked if pair[0] in group]
        (a, b, table, phi, chi2), p = min(inside, key=lambda item: item[0][3])
        either = int(table[0, 0] + table[0, 1] + table[1, 0])
        both = int(table[0, 0])
        names = ", ".join(profile.label(c) for c in members[:-1])
        names += f" and {profile.label(members[-1])}"
        sentence = (
            f"{names} are missing in the same rows: {pct(both / either)} of the "
            f"{num(either)} rows missing {profile.label(a)} or {profile.label(b)} miss both "
            f"(phi = {num(phi)}, chi-square = {num(chi2)}, {p_text(float(p))})"
            f"{profile.sample_note()}."
        )
        out.append(
            Insight(
                type="missing",
                columns=members,
                score=0.5 * phi + 0.5 * max(shares[c][0] for c in members),
                test="phi coefficient of the missing indicators, chi-square test of"
                " independence (scipy); Holm correction",
                statistic={"name": "chi-square", "value": chi2},
                p_value=float(p),
                effect_size={"name": "phi", "value": phi},
                sentence=sentence,
                chart=chart(
                    "heatmap",
                    f"Rows missing {profile.label(a)} and {profile.label(b)}",
                    [
                        {
                            "name": "rows",
                            "x": ["missing", "missing", "present", "present"],
                            "y": ["missing", "present", "missing", "present"],
                            "value": values([table[0, 0], table[1, 0], table[0, 1], table[1, 1]]),
                        }
                    ],
                    x=axis(a, profile.label(a), "nominal"),
                    y=axis(b, profile.label(b), "nominal"),
                ),
                sample_rows=profile.rows,
                details={"pattern": "together", "rows_missing_both": both, "either": either},
            )
        )
    return out


def duplicates(profile: Profile) -> list[Insight]:
    """``duplicates``: rows that repeat an earlier row in every column.

    Counted over the whole dataset by the caller when it can (``Profile.duplicates``,
    from row hashes), else in the rows looked at.
    """
    if profile.duplicates is not None:
        repeated, checked = profile.duplicates["rows"], profile.duplicates["checked"]
        note = (
            ""
            if checked >= profile.total_rows
            else f" (among {num(checked)} of {num(profile.total_rows)} rows, a sample by row"
            " hash that keeps every copy of a row together)"
        )
    else:
        repeated, checked = int(profile.df.duplicated().sum()), profile.rows
        note = profile.sample_note()
    if repeated == 0:
        return []
    share = repeated / checked
    sentence = (
        f"{num(repeated)} row{'s' if repeated > 1 else ''} ({pct(share)}) "
        f"repeat{'s' if repeated == 1 else ''} an earlier row exactly{note}."
    )
    return [
        Insight(
            type="duplicates",
            columns=list(profile.df.columns),
            score=0.1 + 0.9 * saturate(share, 0.05),
            test="exact match of every column (row hashes)",
            statistic={"name": "repeated rows", "value": repeated},
            sentence=sentence,
            chart=chart(
                "pie",
                "Repeated rows",
                [
                    {
                        "name": "rows",
                        "labels": ["unique", "repeats an earlier row"],
                        "values": [checked - repeated, repeated],
                    }
                ],
            ),
            sample_rows=checked,
            details={"repeated": repeated, "checked": checked, "share": share},
        )
    ]
