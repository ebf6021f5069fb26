"""Type inference: Arrow's casts (the fast route) and the patterns (the general route) agree.

Every column is profiled and converted twice, once with the cast fast paths and once with
the patterns alone; the decisions and the converted values must be the same.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from datapilot_hub.domain.ingest import _infer
from datapilot_hub.domain.ingest._infer import ColumnProfile, Locale, clean_text, convert

ROWS = 6000  # above the prefix verdict's threshold, in two batches
US = Locale(".", ",", None)
EU = Locale(",", ".", None)


def _repeat(values: list[str], rows: int = ROWS) -> list[str]:
    return [values[i % len(values)] for i in range(rows)]


def _with(values: list[str], every: int, odd: str) -> list[str]:
    return [odd if i % every == 0 else v for i, v in enumerate(values)]


rng = np.random.default_rng(3)
INTS = [str(v) for v in rng.integers(-(10**6), 10**6, ROWS)]
AMOUNTS = [f"{v:,.2f}" for v in rng.uniform(-5_000, 2_000_000, ROWS)]
EU_AMOUNTS = [a.replace(",", "_").replace(".", ",").replace("_", ".") for a in AMOUNTS]
DAYS = np.datetime64("2020-01-01") + rng.integers(0, 1500, ROWS)
ISO = [str(d) for d in DAYS]
US_DATES = [f"{d[5:7]}/{d[8:10]}/{d[:4]}" for d in ISO]
EU_DATES = [f"{d[8:10]}.{d[5:7]}.{d[:4]}" for d in ISO]

COLUMNS = {
    "integers": (INTS, US),
    "integers with a few bad cells": (_with(INTS, 40, "oops"), US),
    "leading zeros": (_with([f"{int(v) % 1000:05d}" for v in INTS], 3, "12345"), US),
    "hexadecimal codes": (_with(INTS, 7, "0x1F"), US),
    "floats": ([f"{float(v) / 7:.3f}" for v in INTS], US),
    "floats and inf": (_with([f"{float(v) / 7:.3f}" for v in INTS], 50, "inf"), US),
    "thousands separators": (AMOUNTS, US),
    "grouped integers": ([f"{abs(int(v)):,}" for v in INTS], US),
    "bad grouping": (_with(AMOUNTS, 30, "1,23,4.5"), US),
    "decimal comma": (EU_AMOUNTS, EU),
    "currency": ([f"${a}" for a in AMOUNTS], US),
    "whole numbers past int64": (_repeat(["12345678901234567890123", "9"]), US),
    "iso dates": (ISO, US),
    "iso datetimes": ([f"{d} 10:{i % 60:02d}:00" for i, d in enumerate(ISO)], US),
    "dates and datetimes": (_with(ISO, 4, "2021-03-04 10:00:00"), US),
    "us dates": (US_DATES, US),
    "european dates": (EU_DATES, Locale(".", None, None)),
    "impossible dates": (_with(US_DATES, 25, "02/30/2020"), US),
    "unpadded dates": (_with(US_DATES, 5, "1/5/2020"), US),
    "time zones": ([f"{d}T10:00:00+02:00" for d in ISO], US),
    "yes and no": (_repeat(["yes", "no", "Yes", "NO"]), US),
    "Y and N": (_repeat(["Y", "N", "y"]), US),
    "text": (_repeat(["alpha", "beta", "12", "2020-01-01"]), US),
}


def _profile_and_convert(values: list[str], locale: Locale, fast: bool, monkeypatch):
    monkeypatch.setattr(_infer, "FAST_PATHS", fast)
    profile = ColumnProfile("c", locale)
    batches = [pa.array(values[: ROWS // 2]), pa.array(values[ROWS // 2 :])]
    cleaned = []
    for batch in batches:
        text, _ = clean_text(batch)
        profile.update(text, ROWS)
        cleaned.append(text)
    decision = profile.decide(0.95)
    converted = pa.concat_arrays([convert(text, decision, locale) for text in cleaned])
    return decision, converted


@pytest.mark.parametrize("case", list(COLUMNS))
def test_fast_paths_agree_with_the_patterns(case, monkeypatch):
    values, locale = COLUMNS[case]
    fast, fast_values = _profile_and_convert(values, locale, True, monkeypatch)
    slow, slow_values = _profile_and_convert(values, locale, False, monkeypatch)
    assert (fast.type, fast.reason, fast.dayfirst, fast.unit, fast.tz) == (
        slow.type,
        slow.reason,
        slow.dayfirst,
        slow.unit,
        slow.tz,
    )
    assert fast_values.equals(slow_values), case


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("integers", "integer"),
        ("integers with a few bad cells", "integer"),
        ("leading zeros", "string"),
        ("hexadecimal codes", "string"),
        ("floats", "number"),
        ("thousands separators", "number"),
        ("grouped integers", "integer"),
        ("decimal comma", "number"),
        ("currency", "number"),
        ("whole numbers past int64", "string"),
        ("iso dates", "date"),
        ("iso datetimes", "datetime"),
        ("us dates", "date"),
        ("european dates", "date"),
        ("impossible dates", "date"),
        ("time zones", "datetime"),
        ("yes and no", "boolean"),
        ("text", "string"),
    ],
)
def test_inferred_types(case, expected, monkeypatch):
    values, locale = COLUMNS[case]
    decision, converted = _profile_and_convert(values, locale, True, monkeypatch)
    assert decision.type == expected


def test_impossible_calendar_dates_are_invalid_not_rolled_over(monkeypatch):
    values, locale = COLUMNS["impossible dates"]
    decision, converted = _profile_and_convert(values, locale, True, monkeypatch)
    assert decision.dayfirst is False
    # 02/30/2020 is not 1 March: it is an invalid cell (null, reported)
    assert converted.null_count == len([v for v in values if v == "02/30/2020"])
    assert (
        converted[1].as_py().isoformat()
        == values[1][6:] + "-" + values[1][:2] + "-" + values[1][3:5]
    )


def test_european_dates_are_read_day_first(monkeypatch):
    values, locale = COLUMNS["european dates"]
    decision, converted = _profile_and_convert(values, locale, True, monkeypatch)
    assert decision.dayfirst is True
    assert [d.isoformat() for d in converted.to_pylist()] == ISO


def test_separators_are_stripped_on_sliced_arrays_with_nulls():
    values = pa.array(["x", "1,234.5", None, "12,345,678.25", "", "7"]).slice(1)
    assert _infer.plain_number_text(values, US).to_pylist() == [
        "1234.5",
        None,
        "12345678.25",
        "",
        "7",
    ]
    assert _infer.plain_number_text(pa.array(["1.234,5", None]), EU).to_pylist() == [
        "1234.5",
        None,
    ]
