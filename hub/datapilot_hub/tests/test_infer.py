"""Type inference: Arrow's casts (the fast route) and the patterns (the general route) agree.

Every column is profiled and converted twice, once with the cast fast paths and once with
the patterns alone; the decisions and the converted values must be the same.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# ---- no value that fits a wider type is ever nulled ------------------------------------

_ISO_FORMATS = ["%Y-%m-%d", "%Y/%m/%d"]


@st.composite
def _number_value(draw, whole: bool) -> tuple[str, float, bool]:
    """(text, value, whole) of a number as exports write it."""
    if whole:
        i = draw(st.integers(-(10**12), 10**12))
        return (f"{i:,}" if draw(st.booleans()) else str(i)), float(i), True
    form = draw(st.sampled_from(["half", "float", "fixed"]))
    if form == "half":
        i = draw(st.integers(0, 10**12))
        return f"{i}.5", i + 0.5, False
    x = draw(st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False))
    text = repr(x) if form == "float" else f"{x:,.2f}"
    return text, float(text.replace(",", "")), False


@st.composite
def _moment_value(draw, date_only: bool) -> tuple[str, dt.datetime, bool]:
    """(text, value, date only) of a date or a moment as exports write it."""
    day = draw(st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)))
    text = day.strftime(draw(st.sampled_from(_ISO_FORMATS)))
    if date_only:
        return text, dt.datetime.combine(day, dt.time()), True
    moment = dt.time(draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59)))
    sep = draw(st.sampled_from([" ", "T"])) if text[4] == "-" else " "
    return f"{text}{sep}{moment.isoformat()}", dt.datetime.combine(day, moment), False


@st.composite
def _columns(draw):
    """A column of one family: mostly its narrow type (whole numbers, dates), some
    percent of the wider one (halves and decimals, moments), a few cells of no type of
    the family (text)."""
    family = draw(st.sampled_from(["number", "moment"]))
    value = _number_value if family == "number" else _moment_value
    wider = draw(st.sampled_from([0, 1, 2, 3, 5, 50, 100]))
    cells = []
    for _ in range(draw(st.integers(20, 250))):
        roll = draw(st.integers(0, 99))
        if roll < 2:
            cells.append(("x-" + draw(st.text("abcdefgh", min_size=1, max_size=6)), None, None))
        else:
            cells.append(draw(value(roll >= 2 + wider)))
    return family, cells, draw(st.integers(1, len(cells) - 1)), draw(st.booleans())


@settings(max_examples=150, deadline=None)
@given(_columns())
def test_no_value_that_fits_a_wider_type_is_nulled(column):
    family, cells, cut, fast = column
    texts = [c[0] for c in cells]
    was = _infer.FAST_PATHS
    _infer.FAST_PATHS = fast
    try:
        profile = ColumnProfile("c", US)
        batches = [clean_text(pa.array(part))[0] for part in (texts[:cut], texts[cut:])]
        for batch in batches:
            profile.update(batch, len(texts))
        decision = profile.decide(0.95)
        converted = pa.concat_arrays([convert(b, decision, US) for b in batches]).to_pylist()
    finally:
        _infer.FAST_PATHS = was
    kinds = {"number": ("integer", "number"), "moment": ("date", "datetime")}[family]
    members = [(i, c) for i, c in enumerate(cells) if c[1] is not None]
    if decision.type not in kinds:
        # the family missed the tolerance: text, and text loses nothing
        assert decision.type == "string" and converted == texts
        return
    # the narrowest type that holds every value of the family
    narrow = all(c[2] for _, c in members)
    assert decision.type == kinds[0 if narrow else 1], (decision, texts)
    for i, (text, value, _) in members:
        got = converted[i]
        assert got is not None, (text, decision)
        if decision.type == "date":
            assert got == value.date(), text
        else:
            assert got == value, text
