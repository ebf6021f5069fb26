"""Column types from the whole file, and the conversion of text to those types.

Pass one feeds every batch of text columns to a :class:`ColumnProfile`, which counts
how many values fit each candidate type (vectorized: pyarrow regular expressions, no
Python loop over cells). :meth:`ColumnProfile.decide` then picks the type: the first of
boolean, integer, number, date, datetime that at least ``tolerance`` of the non-empty
values fit, with the reason in words. Pass two converts each batch with
:func:`convert`; cells that do not fit become null and are reported.

Most columns of real files are clean, so each batch first tries Arrow's own parsers
(casts), which check every value exactly and cost a fraction of a regular expression;
the expressions run only on batches where a cast refuses some value. Both routes count
the same thing, and the tests check that they agree.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TYPES = ("boolean", "integer", "number", "date", "datetime", "string")
NULL_TOKENS = [
    "",
    "NA",
    "N/A",
    "n/a",
    "na",
    "null",
    "NULL",
    "Null",
    "None",
    "none",
    "-",
    "--",
    "#N/A",
    "#NA",
    "NaN",
    "nan",
    "NaT",
    "?",
    # "not available" in statistics agencies' tables
    "..",
    "...",
]
NULL_TOKEN_BYTES = max(len(t.encode()) for t in NULL_TOKENS)
TRUE_TOKENS = ["true", "yes", "y", "t"]
FALSE_TOKENS = ["false", "no", "n", "f"]
# what profiling calls boolean (t and f alone are too ambiguous to decide a type on)
BOOL_TOKENS = ["true", "false", "yes", "no", "y", "n"]
CURRENCY = r"(?:[$€£¥₹₩]|USD|EUR|GBP|JPY|CHF|CAD|AUD)"
_BOOL_RE = r"(?i)^(?:true|false|yes|no|y|n)$"
_ISO_DATE = r"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}"
# day and month in either order, a four- or two-digit year (31-01-24)
_SLASH_DATE = r"[0-9]{1,2}[/.\-][0-9]{1,2}[/.\-](?:[0-9]{4}|[0-9]{2})"
_TIME = r"[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:\s?[AaPp][Mm])?"
_TZ = r"(?:\s?(?:Z|UTC|[+-][0-9]{2}:?[0-9]{2}))"
DATE_RE = rf"^(?:{_ISO_DATE}|{_SLASH_DATE})$"
DATETIME_RE = rf"^(?:{_ISO_DATE}|{_SLASH_DATE})(?:[T ]{_TIME}{_TZ}?)?$"
TZ_RE = rf"[T ]{_TIME}{_TZ}$"
# yyyymmdd, taken for a date only in a column named like one (else it is a number)
COMPACT_DATE_RE = r"^(?:1[89]|20|21)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])$"
DATE_NAME_RE = re.compile(
    r"(?i)date|datum|fecha|\bdob\b|(?:^|[^a-z])(?:dt|day|jour|tag)(?:[^a-z]|$)"
)
# enough values seen to give up on a type that already misses by far
_EARLY_VERDICT = 2000
# tests switch the cast fast paths off to check that both routes agree
FAST_PATHS = True


@dataclass(frozen=True)
class Locale:
    """How numbers and dates are written in the file."""

    decimal: str = "."
    thousands: str | None = ","
    dayfirst: bool | None = None

    def number_patterns(self) -> tuple[str, str]:
        """(integer, number) regular expressions for this locale."""
        d = re.escape(self.decimal)
        groups = (
            rf"[0-9]{{1,3}}(?:{re.escape(self.thousands)}[0-9]{{3}})+" if self.thousands else None
        )
        digits = rf"(?:[0-9]+|{groups})" if groups else "[0-9]+"
        integer = rf"^[+-]?{digits}$"
        number = (
            rf"^\(?[+-]?\s?{CURRENCY}?\s?[+-]?(?:{digits}(?:{d}[0-9]*)?|{d}[0-9]+)"
            rf"(?:[eE][+-]?[0-9]+)?\s?{CURRENCY}?\s?%?\)?$"
        )
        return integer, number


@dataclass
class ColumnProfile:
    """What pass one learned about one column."""

    label: str
    locale: Locale
    tolerance: float = 0.95
    rows: int = 0
    nulls: int = 0
    trimmed: int = 0
    max_bytes: int = 0
    fits: Counter = field(default_factory=Counter)
    alive: set[str] = field(
        default_factory=lambda: {"boolean", "integer", "number", "date", "datetime"}
    )
    leading_zeros: int = 0
    too_big: int = 0
    units: Counter = field(default_factory=Counter)
    day_over_12: int = 0
    month_over_12: int = 0
    with_tz: int = 0
    # values written day and month in either order (31/01/2024, 01-02-24)
    dmy: int = 0
    # values written yyyymmdd, counted in columns named like a date
    compact: int = 0
    # values that are numbers once separators are taken out (no unit, sign in parentheses)
    plain_numbers: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def non_null(self) -> int:
        return self.rows - self.nulls

    def __post_init__(self) -> None:
        self.date_named = bool(DATE_NAME_RE.search(self.label))

    def update(self, arr: pa.Array, expected_rows: float | None = None) -> None:
        """Count what the (cleaned, text) values of one batch fit.

        ``expected_rows`` (an estimate of the file's rows) lets a type be dropped as soon
        as its misses exceed what the tolerance allows in the whole file, so that text
        columns stop being tested early while the decision still covers every row.
        """
        self.rows += len(arr)
        self.nulls += arr.null_count
        values = arr.drop_null() if arr.null_count else arr
        n = len(values)
        if not n:
            return
        self.max_bytes = max(self.max_bytes, pc.max(pc.binary_length(values)).as_py())
        if len(self.examples) < 5:
            self.examples.extend(v for v in values.slice(0, 5 - len(self.examples)).to_pylist())
        if self.date_named and ("integer" in self.alive or self.compact):
            self.compact += pc.sum(pc.match_substring_regex(values, COMPACT_DATE_RE)).as_py() or 0
        if not self.alive:
            return
        budget = (1 - self.tolerance) * max(expected_rows or 0, self.rows)
        if not (FAST_PATHS and self._cast_fits(values, budget)):
            self._match_patterns(values, budget)
        for kind in list(self.alive):
            # it can no longer reach the tolerance: stop testing it
            if self._misses(kind) > budget:
                self.alive.discard(kind)

    def _cast_fits(self, values: pa.Array, budget: float) -> bool:
        """Count the batch with Arrow's parsers when one accepts every value; else False.

        Each cast checks every value exactly; where a parser is laxer than the pattern
        (hexadecimal, ``inf``, separators anywhere) the difference is checked here, so
        the counts are those the patterns would give.
        """
        n, alive, loc = len(values), self.alive, self.locale
        if alive & {"integer", "number"}:
            if (ints := _try_cast(values, pa.int64())) is not None:
                if not self._canonical_integers(values, ints):
                    return False
                self.fits.update(integer=n, number=n)
                self.plain_numbers += n
                return True
            if "number" in alive and not self._integer_like(values.slice(0, 1024)):
                # (whole numbers past int64 parse as floats too; the patterns keep them text)
                if loc.decimal == "." and _finite_floats(values) is not None:
                    self.fits["number"] += n
                    self.plain_numbers += n
                    return True
                if (loc.thousands or loc.decimal != ".") and self._grouped_numbers(values, budget):
                    return True
        if alive & {"date", "datetime"}:
            if _try_cast(values, pa.date32()) is not None:
                self.fits.update(date=n, datetime=n)
                return True
            if "datetime" in alive and _try_cast(values, pa.timestamp("us")) is not None:
                # Arrow reads a bare date as midnight: those values are dates too
                self.fits["date"] += pc.sum(pc.less_equal(pc.binary_length(values), 10)).as_py()
                self.fits["datetime"] += n
                return True
            if (m := _slash_dates(values)) is not None:
                self.day_over_12 += int((_two_digits(m, 0) > 12).sum())
                self.month_over_12 += int((_two_digits(m, 3) > 12).sum())
                self.dmy += n
                self.fits.update(date=n, datetime=n)
                return True
        if "boolean" in alive:
            lower = pc.utf8_lower(values)
            if pc.all(pc.is_in(lower, value_set=pa.array(BOOL_TOKENS))).as_py():
                self.fits["boolean"] += n
                return True
        return False

    def _canonical_integers(self, values: pa.Array, ints: pa.Array) -> bool:
        """Count leading zeros of values Arrow read as integers; False if any is not decimal.

        Arrow also reads ``0x1F``: the few values whose text is longer than their
        integer's are looked at with a pattern.
        """
        longer = pc.greater(pc.binary_length(values), pc.binary_length(pc.cast(ints, pa.string())))
        if not pc.any(longer).as_py():
            return True
        odd = values.filter(longer)
        if not pc.all(pc.match_substring_regex(odd, r"^[+-]?[0-9]+$")).as_py():
            return False
        self.leading_zeros += pc.sum(pc.match_substring_regex(odd, r"^[+-]?0[0-9]")).as_py() or 0
        return True

    def _grouped_numbers(self, values: pa.Array, budget: float) -> bool:
        """Numbers with thousands separators or a decimal comma, when every one is plain."""
        if _finite_floats(plain_number_text(values, self.locale)) is None:
            return False
        # the cast ignores where separators sit: the pattern checks each value's grouping
        integer_re, number_re = self.locale.number_patterns()
        n = len(values)
        if (pc.sum(pc.match_substring_regex(values, number_re)).as_py() or 0) != n:
            return False
        self.fits["number"] += n
        self.plain_numbers += n
        self._drop_hopeless(values, {"integer"}, budget)
        if "integer" in self.alive:
            mask = pc.match_substring_regex(values, integer_re)
            hits = pc.sum(mask).as_py() or 0
            self.fits["integer"] += hits
            if hits:
                self._integer_details(values.filter(mask))
        return True

    def _match_patterns(self, values: pa.Array, budget: float) -> None:
        """The general route: each type's regular expression over the batch."""
        self._drop_hopeless(values, set(self.alive), budget)
        for kind in list(self.alive):
            mask = pc.match_substring_regex(values, self._pattern(kind))
            hits = pc.sum(mask).as_py() or 0
            self.fits[kind] += hits
            if not hits:
                continue
            if kind == "integer":
                self._integer_details(values.filter(mask))
            elif kind == "number":
                units = pc.extract_regex(values.filter(mask), rf"(?P<u>{CURRENCY}|%)")
                units = units.field("u").drop_null()
                if len(units):
                    self.units.update(units.slice(0, 1000).to_pylist())
            elif kind == "datetime":
                self._date_details(values.filter(mask))

    def _drop_hopeless(self, values: pa.Array, kinds: set[str], budget: float) -> None:
        """Test a prefix of a long batch first: drop the kinds that miss more than allowed."""
        if len(values) <= 2 * _EARLY_VERDICT:
            return
        prefix = values.slice(0, _EARLY_VERDICT)
        for kind in kinds & self.alive:
            hits = pc.sum(pc.match_substring_regex(prefix, self._pattern(kind))).as_py() or 0
            # (this batch is in non_null already, its fits not yet)
            if self._misses(kind) - len(values) + (len(prefix) - hits) > budget:
                self.alive.discard(kind)

    def _misses(self, kind: str) -> int:
        return self.non_null - self.fits[kind]

    def _pattern(self, kind: str) -> str:
        integer_re, number_re = self.locale.number_patterns()
        return {
            "boolean": _BOOL_RE,
            "integer": integer_re,
            "number": number_re,
            "date": DATE_RE,
            "datetime": DATETIME_RE,
        }[kind]

    def _integer_like(self, values: pa.Array) -> bool:
        return bool(pc.all(pc.match_substring_regex(values, r"^[+-]?[0-9]+$")).as_py())

    def _integer_details(self, fitting: pa.Array) -> None:
        digits = pc.replace_substring_regex(fitting, r"[^0-9]", "")
        self.leading_zeros += pc.sum(pc.match_substring_regex(digits, r"^0[0-9]")).as_py() or 0
        self.too_big += pc.sum(pc.greater(pc.utf8_length(digits), 18)).as_py() or 0

    def _date_details(self, fitting: pa.Array) -> None:
        slashed = fitting.filter(pc.match_substring_regex(fitting, rf"^{_SLASH_DATE}"))
        if len(slashed):
            self.dmy += len(slashed)
            parts = pc.extract_regex(
                slashed, r"^(?P<a>[0-9]{1,2})[/.\-](?P<b>[0-9]{1,2})[/.\-][0-9]{2}"
            )
            a = pc.cast(parts.field("a"), pa.int32())
            b = pc.cast(parts.field("b"), pa.int32())
            self.day_over_12 += pc.sum(pc.greater(a, 12)).as_py() or 0
            self.month_over_12 += pc.sum(pc.greater(b, 12)).as_py() or 0
        self.with_tz += pc.sum(pc.match_substring_regex(fitting, TZ_RE)).as_py() or 0

    def decide(
        self,
        tolerance: float,
        override: str | None = None,
        file_order: tuple[bool | None, str] | None = None,
    ) -> ColumnDecision:
        """The column's type, why, and how to convert it.

        The family of types (numbers, dates, yes/no) is the one that at least
        ``tolerance`` of the values fit; within it, the narrowest type that holds every
        value of the family: a column of whole numbers with one ``1.5`` is a number
        column, a column of dates with one time a datetime column. Only values that fit
        no type of the family are invalid cells. ``file_order`` is the day order the rest
        of the file says (value, why), for dates that do not say it themselves.
        """
        dayfirst, order_why = self._dayfirst(file_order)
        unit = None
        if self.units:
            symbol, count = self.units.most_common(1)[0]
            unit = symbol if count >= 0.5 * max(self.fits["number"], 1) else None
        if override:
            return ColumnDecision(
                override, f"set by options.types ({override})", dayfirst, unit, bool(self.with_tz)
            )
        n = self.non_null
        if n == 0:
            return ColumnDecision("string", "the column is empty", dayfirst, None, False)
        fits = self.fits

        def share(kind: str) -> float:
            return fits[kind] / n

        def of(count: int) -> str:
            return f"all {n}" if count == n else f"{count} of {n}"

        def rest(count: int) -> str:
            return "" if count == n else f"; {n - count} fit no such type and are invalid"

        if share("boolean") >= tolerance:
            why = f"{of(fits['boolean'])} values are yes/no or true/false" + rest(fits["boolean"])
            return ColumnDecision("boolean", why, dayfirst, None, False)
        if self.date_named and self.compact / n >= tolerance:
            why = (
                f"{of(self.compact)} values are dates written yyyymmdd, in a column named"
                " like a date" + rest(self.compact)
            )
            return ColumnDecision("date", why, dayfirst, None, False, compact=True)
        if share("number") >= tolerance:
            numbers = fits["number"]
            if fits["integer"] == numbers:
                if self.leading_zeros:
                    why = (
                        f"{self.leading_zeros} value(s) have leading zeros"
                        " (identifiers or codes), so the column stays text"
                    )
                    return ColumnDecision("string", why, dayfirst, None, False)
                if self.too_big:
                    why = (
                        f"{self.too_big} value(s) are too large for a"
                        " 64-bit integer, so the column stays text"
                    )
                    return ColumnDecision("string", why, dayfirst, None, False)
                why = f"{of(numbers)} values are whole numbers" + rest(numbers)
                return ColumnDecision(
                    "integer", why, dayfirst, None, False, self.plain_numbers == n
                )
            if self.leading_zeros and fits["integer"] >= tolerance * n:
                why = (
                    f"{self.leading_zeros} value(s) have leading zeros"
                    " (identifiers or codes), so the column stays text"
                )
                return ColumnDecision("string", why, dayfirst, None, False)
            why = f"{of(numbers)} values are numbers, not all whole"
            if self.locale.decimal == ",":
                why += " (decimal comma)"
            if unit:
                why += f" with unit {unit!r}"
            why += rest(numbers)
            return ColumnDecision("number", why, dayfirst, unit, False, self.plain_numbers == n)
        if share("datetime") >= tolerance:
            order = f" ({order_why})" if self.dmy and order_why else ""
            moments = fits["datetime"]
            if fits["date"] == moments:
                why = f"{of(moments)} values are dates{order}" + rest(moments)
                return ColumnDecision("date", why, dayfirst, None, False)
            why = f"{of(moments)} values are dates with times{order}"
            if self.with_tz:
                why += "; time zones converted to UTC"
            why += rest(moments)
            return ColumnDecision("datetime", why, dayfirst, None, bool(self.with_tz))
        kinds = ("boolean", "number", "datetime")
        best = max(kinds, key=share)
        why = "values are text"
        if share(best) > 0.5:
            word = {"boolean": "yes/no", "number": "number", "datetime": "date"}[best]
            why = (
                f"only {100 * share(best):.1f}% of values are {word} values (below the"
                f" tolerance of {100 * tolerance:g}%), so the column stays text"
            )
        return ColumnDecision("string", why, dayfirst, None, False)

    def day_evidence(self) -> bool | None:
        """The day order this column's own values prove (a day above 12), if any."""
        if self.day_over_12 and not self.month_over_12:
            return True
        if self.month_over_12 and not self.day_over_12:
            return False
        return None

    def _dayfirst(self, file_order: tuple[bool | None, str] | None) -> tuple[bool | None, str]:
        """(day first?, why in words)."""
        own = self.day_evidence()
        if own is True:
            return True, f"day first: {self.day_over_12} value(s) have a day above 12"
        if own is False:
            return False, f"month first: {self.month_over_12} value(s) have a day above 12"
        if file_order is not None:
            return file_order
        if self.locale.dayfirst is not None:
            return self.locale.dayfirst, "day first" if self.locale.dayfirst else "month first"
        return None, ""


@dataclass
class ColumnDecision:
    """A column's decided type and what converting to it needs."""

    type: str
    reason: str
    dayfirst: bool | None
    unit: str | None
    tz: bool
    # every value is a number once separators are taken out: no pattern needed to convert
    plain: bool = False
    # dates written yyyymmdd
    compact: bool = False

    def arrow_type(self) -> pa.DataType:
        return {
            "boolean": pa.bool_(),
            "integer": pa.int64(),
            "number": pa.float64(),
            "date": pa.date32(),
            "datetime": pa.timestamp("us", tz="UTC") if self.tz else pa.timestamp("us"),
            "string": pa.string(),
        }[self.type]


def clean_text(arr: pa.Array, nulls_read: bool = False) -> tuple[pa.Array, int]:
    """Trim whitespace and turn null tokens into nulls; returns (values, cells trimmed).

    ``nulls_read`` says the reader turned the exact tokens into nulls already (the CSV
    reader does, in its own threads): then only trimmed cells can still be tokens.
    """
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    trimmed = pc.utf8_trim_whitespace(arr)
    lengths = pc.binary_length(trimmed)
    changed = pc.sum(pc.not_equal(lengths, pc.binary_length(arr))).as_py() or 0
    if nulls_read and not changed:
        return arr, 0
    if not pc.any(pc.less_equal(lengths, NULL_TOKEN_BYTES)).as_py():
        return trimmed, changed
    nulls = pc.is_in(trimmed, value_set=pa.array(NULL_TOKENS))
    return pc.if_else(nulls, pa.scalar(None, pa.string()), trimmed), changed


def _mask_invalid(values: pa.Array, pattern: str) -> pa.Array:
    """``values`` with the cells that do not match ``pattern`` set to null."""
    ok = pc.match_substring_regex(values, pattern)
    return pc.if_else(ok, values, pa.scalar(None, values.type))


def convert(values: pa.Array, decision: ColumnDecision, locale: Locale) -> pa.Array:
    """Convert cleaned text to the decided type; cells that do not fit become null."""
    kind = decision.type
    if kind == "string":
        return values
    integer_re, number_re = locale.number_patterns()
    if kind == "boolean":
        lower = pc.utf8_lower(values)
        truth = pc.is_in(lower, value_set=pa.array(TRUE_TOKENS))
        known = pc.is_in(lower, value_set=pa.array(TRUE_TOKENS + FALSE_TOKENS))
        return pc.if_else(known, truth, pa.scalar(None, pa.bool_()))
    if kind == "integer":
        if (fast := _try_cast(values, pa.int64())) is not None:
            return fast
        if (
            decision.plain
            and (fast := _try_cast(plain_number_text(values, locale), pa.int64())) is not None
        ):
            return fast
        valid = _mask_invalid(values, integer_re)
        if locale.thousands:
            valid = pc.replace_substring(valid, locale.thousands, "")
        return _cast_or_coerce(valid, pa.int64())
    if kind == "number":
        if locale.decimal == "." and (fast := _try_cast(values, pa.float64())) is not None:
            return fast
        if (
            decision.plain
            and (fast := _try_cast(plain_number_text(values, locale), pa.float64())) is not None
        ):
            return fast
        valid = _mask_invalid(values, number_re)
        negative = pc.starts_with(valid, "(")
        plain = pc.replace_substring_regex(valid, rf"{CURRENCY}|[%()\s]", "")
        if locale.thousands:
            plain = pc.replace_substring(plain, locale.thousands, "")
        if locale.decimal != ".":
            plain = pc.replace_substring(plain, locale.decimal, ".")
        number = _cast_or_coerce(plain, pa.float64())
        return pc.if_else(pc.fill_null(negative, False), pc.negate(number), number)
    if kind == "date":
        if decision.compact:
            return _compact_dates(values)
        if (fast := _try_cast(values, pa.date32())) is not None:
            return fast
        if (m := _slash_dates(values)) is not None:
            iso = _slash_dates_to_iso(values, m, decision.dayfirst)
            # Arrow's date parser refuses 02/30 (strptime would roll it over to March)
            if (fast := _try_cast(iso, pa.date32())) is not None:
                return fast
        valid = _mask_invalid(values, DATE_RE)
        formats = ["%Y-%m-%d", "%Y/%m/%d"]
        order = ("%d", "%m") if decision.dayfirst else ("%m", "%d")
        formats += [f"{order[0]}{s}{order[1]}{s}{y}" for y in ("%Y", "%y") for s in "/.-"]
        # pandas, not Arrow's strptime: that one rolls 02/30 over to 1 March
        text = valid.to_pandas()
        parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[s]")
        for f in formats:
            missing = parsed.isna() & text.notna()
            if not missing.any():
                break
            parsed[missing] = pd.to_datetime(text[missing], format=f, errors="coerce")
        return pa.array(parsed, type=pa.timestamp("s"), from_pandas=True).cast(pa.date32())
    if not decision.tz and (fast := _try_cast(values, pa.timestamp("us"))) is not None:
        return fast
    valid = _mask_invalid(values, DATETIME_RE)
    valid = pc.replace_substring_regex(valid, r"\s?UTC$", "Z")
    iso = pc.fill_null(pc.match_substring_regex(valid, rf"^{_ISO_DATE}"), False)
    out = pa.nulls(len(valid), pa.timestamp("us", tz="UTC"))
    for is_iso in (True, False):
        where = pc.and_(iso if is_iso else pc.invert(iso), pc.is_valid(valid))
        if not pc.any(where).as_py():
            continue
        part = valid.filter(where).to_pandas()
        kw: dict[str, Any] = (
            {"format": "ISO8601"}
            if is_iso
            else {"format": "mixed", "dayfirst": bool(decision.dayfirst)}
        )
        parsed = pd.to_datetime(part, errors="coerce", utc=True, **kw)
        parsed_arrow = pa.array(parsed, type=pa.timestamp("us", tz="UTC"), from_pandas=True)
        # the parsed values go back to their rows, in order
        out = pc.replace_with_mask(out, where, parsed_arrow)
    return out if decision.tz else out.cast(pa.timestamp("us"))


def _compact_dates(values: pa.Array) -> pa.Array:
    """yyyymmdd text as dates (Arrow's date parser refuses 20240230); others null."""
    valid = _mask_invalid(values, COMPACT_DATE_RE)
    iso = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(valid, 0, 4),
        pc.utf8_slice_codeunits(valid, 4, 6),
        pc.utf8_slice_codeunits(valid, 6, 8),
        "-",
    )
    try:
        return pc.cast(iso, pa.date32())
    except pa.ArrowInvalid:
        # an impossible day (0230): those cells alone are null
        text = iso.to_pandas()
        parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        return pa.array(parsed, type=pa.timestamp("s"), from_pandas=True).cast(pa.date32())


def _finite_floats(values: pa.Array) -> pa.Array | None:
    """``values`` read as floats, or None when one is refused or is inf or nan."""
    floats = _try_cast(values, pa.float64())
    if floats is None or not pc.all(pc.is_finite(floats)).as_py():
        return None
    return floats


def plain_number_text(values: pa.Array, locale: Locale) -> pa.Array:
    """Numbers written with the locale's separators, rewritten as Arrow reads them."""
    if locale.thousands:
        values = _strip_char(values, locale.thousands)
    if locale.decimal != ".":
        values = _swap_char(values, locale.decimal, ".")
    return values


def _string_buffers(values: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(array at offset 0, its offsets, its bytes) of a string array."""
    if values.offset:
        values = pa.concat_arrays([values])
    _, offsets, data = values.buffers()
    offsets = np.frombuffer(offsets, np.int32, len(values) + 1)
    chars = np.frombuffer(data, np.uint8, offsets[-1]) if data else np.zeros(0, np.uint8)
    return values, offsets, chars


def _strip_char(values: pa.Array, char: str) -> pa.Array:
    """``values`` with every ``char`` (one ASCII character) removed.

    Done on the buffers with numpy: ``pc.replace_substring`` takes ten times as long,
    and these are the thousands separators of every number of a column.
    """
    if len(char.encode()) != 1 or pa.types.is_large_string(values.type):
        return pc.replace_substring(values, char, "")
    values, offsets, chars = _string_buffers(values)
    drop = chars == ord(char)
    if not drop.any():
        return values
    removed = np.concatenate(([0], np.cumsum(drop, dtype=np.int32)))
    return pa.StringArray.from_buffers(
        len(values),
        pa.py_buffer((offsets - removed[offsets]).astype(np.int32)),
        pa.py_buffer(chars[~drop]),
        values.buffers()[0],
        values.null_count,
    )


def _swap_char(values: pa.Array, old: str, new: str) -> pa.Array:
    """``values`` with one ASCII character replaced by another (a decimal comma)."""
    if pa.types.is_large_string(values.type):
        return pc.replace_substring(values, old, new)
    values, offsets, chars = _string_buffers(values)
    swapped = np.where(chars == ord(old), np.uint8(ord(new)), chars)
    return pa.StringArray.from_buffers(
        len(values),
        pa.py_buffer(offsets),
        pa.py_buffer(swapped),
        values.buffers()[0],
        values.null_count,
    )


def _slash_dates(values: pa.Array) -> np.ndarray | None:
    """The bytes of dates all written ``NN/NN/YYYY`` (or with ``.`` or ``-``), one row each.

    A ``(non-null values, 10)`` matrix of digits (0-9, separators kept), or None when
    any value is written otherwise: the patterns take those. Done with numpy on the
    buffers; Arrow's string kernels take several times as long.
    """
    lengths = pc.min_max(pc.binary_length(values))
    if lengths["min"].as_py() != 10 or lengths["max"].as_py() != 10:
        return None
    if pa.types.is_large_string(values.type):
        return None
    values, offsets, chars = _string_buffers(values)
    if offsets[-1] - offsets[0] != 10 * (len(values) - values.null_count):
        return None  # (a null cell that keeps bytes: Arrow allows it, readers do not make it)
    # null cells have no bytes: what is left is the valid values back to back
    m = chars[offsets[0] : offsets[-1]].reshape(-1, 10)
    sep = m[0, 2]
    if sep not in b"/.-" or not ((m[:, 2] == sep) & (m[:, 5] == sep)).all():
        return None
    digits = m[:, [0, 1, 3, 4, 6, 7, 8, 9]] - np.uint8(48)
    if not (digits < 10).all():
        return None
    return m - np.uint8(48)


def _two_digits(m: np.ndarray, at: int) -> np.ndarray:
    return m[:, at].astype(np.int32) * 10 + m[:, at + 1]


def _slash_dates_to_iso(values: pa.Array, m: np.ndarray, dayfirst: bool | None) -> pa.Array:
    """Text ``YYYY-MM-DD`` (nulls kept) from :func:`_slash_dates`' matrix, for Arrow's parser."""
    if values.offset:
        values = pa.concat_arrays([values])
    month, day = (3, 0) if dayfirst else (0, 3)
    iso = np.empty_like(m)
    iso[:, 0:4] = m[:, 6:10]
    iso[:, 5:7] = m[:, month : month + 2]
    iso[:, 8:10] = m[:, day : day + 2]
    iso += np.uint8(48)
    iso[:, 4] = iso[:, 7] = ord("-")
    valid = (
        np.ones(len(values), bool)
        if not values.null_count
        else values.is_valid().to_numpy(zero_copy_only=False)
    )
    offsets = np.zeros(len(values) + 1, np.int32)
    np.cumsum(valid * 10, out=offsets[1:])
    return pa.StringArray.from_buffers(
        len(values),
        pa.py_buffer(offsets),
        pa.py_buffer(iso.ravel()),
        values.buffers()[0] if values.null_count else None,
        values.null_count,
    )


def _try_cast(values: pa.Array, to: pa.DataType) -> pa.Array | None:
    """Arrow's own parser on the whole array, or None when any value is refused.

    A failing cast costs as much as a whole parse, so a prefix is tried first.
    """
    try:
        if len(values) > 4096:
            pc.cast(values.slice(0, 1024), to)
        return pc.cast(values, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _cast_or_coerce(values: pa.Array, to: pa.DataType) -> pa.Array:
    try:
        return pc.cast(values, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # a value the pattern let through but the parser rejects: fall back per value
        series = pd.to_numeric(values.to_pandas(), errors="coerce")
        if pa.types.is_integer(to):
            series = series.where(series == series.round())
            return pa.array(series, type=pa.float64(), from_pandas=True).cast(to, safe=False)
        return pa.array(series, type=to, from_pandas=True)


def logical_type(arrow_type: pa.DataType) -> str:
    """The API's logical type of an Arrow type."""
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "datetime"
    return "string"
