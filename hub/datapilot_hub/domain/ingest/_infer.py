"""Column types from the whole file, and the conversion of text to those types.

Pass one feeds every batch of text columns to a :class:`ColumnProfile`, which counts
how many values fit each candidate type (vectorized: pyarrow regular expressions, no
Python loop over cells). :meth:`ColumnProfile.decide` then picks the type: the first of
boolean, integer, number, date, datetime that at least ``tolerance`` of the non-empty
values fit, with the reason in words. Pass two converts each batch with
:func:`convert`; cells that do not fit become null and are reported.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

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
]
TRUE_TOKENS = ["true", "yes", "y", "t"]
FALSE_TOKENS = ["false", "no", "n", "f"]
CURRENCY = r"(?:[$€£¥₹₩]|USD|EUR|GBP|JPY|CHF|CAD|AUD)"
_BOOL_RE = r"(?i)^(?:true|false|yes|no|y|n)$"
_ISO_DATE = r"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}"
_SLASH_DATE = r"[0-9]{1,2}[/.\-][0-9]{1,2}[/.\-][0-9]{4}"
_TIME = r"[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:\s?[AaPp][Mm])?"
_TZ = r"(?:\s?(?:Z|UTC|[+-][0-9]{2}:?[0-9]{2}))"
DATE_RE = rf"^(?:{_ISO_DATE}|{_SLASH_DATE})$"
DATETIME_RE = rf"^(?:{_ISO_DATE}|{_SLASH_DATE})(?:[T ]{_TIME}{_TZ}?)?$"
TZ_RE = rf"[T ]{_TIME}{_TZ}$"
# enough values seen to give up on a type that already misses by far
_EARLY_VERDICT = 2000


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
    examples: list[str] = field(default_factory=list)

    @property
    def non_null(self) -> int:
        return self.rows - self.nulls

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
        if not self.alive:
            return
        # fast paths: arrow's own parsers accept clean columns in one call
        if self.alive & {"integer", "number"} and self._fits_cast(values, pa.int64()):
            self.fits["integer"] += n
            self.fits["number"] += n
            self._integer_details(values)
            return
        if (
            "number" in self.alive
            and not self._integer_like(values.slice(0, 1024))
            and (self._fits_cast(values, pa.float64()))
        ):
            # (whole numbers past int64 parse as floats too; they take the regex path)
            self.fits["number"] += n
            return
        budget = (1 - self.tolerance) * max(expected_rows or 0, self.rows)
        if len(values) > 2 * _EARLY_VERDICT:
            # a prefix first: a type that misses more than the whole file allows is dropped
            prefix = values.slice(0, _EARLY_VERDICT)
            for kind in list(self.alive):
                hits = pc.sum(pc.match_substring_regex(prefix, self._pattern(kind))).as_py() or 0
                if self._misses(kind) + (len(prefix) - hits) > budget:
                    self.alive.discard(kind)
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
        for kind in list(self.alive):
            # it can no longer reach the tolerance: stop testing it
            if self._misses(kind) > budget:
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

    def _fits_cast(self, values: pa.Array, to: pa.DataType) -> bool:
        if to == pa.float64() and self.locale.decimal != ".":
            return False
        return _try_cast(values, to) is not None

    def _integer_details(self, fitting: pa.Array) -> None:
        digits = pc.replace_substring_regex(fitting, r"[^0-9]", "")
        self.leading_zeros += pc.sum(pc.match_substring_regex(digits, r"^0[0-9]")).as_py() or 0
        self.too_big += pc.sum(pc.greater(pc.utf8_length(digits), 18)).as_py() or 0

    def _date_details(self, fitting: pa.Array) -> None:
        slashed = fitting.filter(pc.match_substring_regex(fitting, rf"^{_SLASH_DATE}"))
        if len(slashed):
            parts = pc.extract_regex(
                slashed, r"^(?P<a>[0-9]{1,2})[/.\-](?P<b>[0-9]{1,2})[/.\-][0-9]{4}"
            )
            a = pc.cast(parts.field("a"), pa.int32())
            b = pc.cast(parts.field("b"), pa.int32())
            self.day_over_12 += pc.sum(pc.greater(a, 12)).as_py() or 0
            self.month_over_12 += pc.sum(pc.greater(b, 12)).as_py() or 0
        self.with_tz += pc.sum(pc.match_substring_regex(fitting, TZ_RE)).as_py() or 0

    def decide(self, tolerance: float, override: str | None = None) -> ColumnDecision:
        """The column's type, why, and how to convert it."""
        dayfirst = self._dayfirst()
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
        share = {k: self.fits[k] / n for k in ("boolean", "integer", "number", "date", "datetime")}

        def pct(k: str) -> str:
            return "all" if self.fits[k] == n else f"{100 * share[k]:.1f}% of"

        if share["boolean"] >= tolerance:
            return ColumnDecision(
                "boolean",
                f"{pct('boolean')} {n} values are yes/no or true/false",
                dayfirst,
                None,
                False,
            )
        if share["integer"] >= tolerance:
            if self.leading_zeros:
                return ColumnDecision(
                    "string",
                    f"{self.leading_zeros} value(s) have leading zeros"
                    " (identifiers or codes), so the column stays text",
                    dayfirst,
                    None,
                    False,
                )
            if self.too_big:
                return ColumnDecision(
                    "string",
                    f"{self.too_big} value(s) are too large for a"
                    " 64-bit integer, so the column stays text",
                    dayfirst,
                    None,
                    False,
                )
            return ColumnDecision(
                "integer", f"{pct('integer')} {n} values are whole numbers", dayfirst, None, False
            )
        if share["number"] >= tolerance:
            why = f"{pct('number')} {n} values are numbers"
            if self.locale.decimal == ",":
                why += " (decimal comma)"
            if unit:
                why += f" with unit {unit!r}"
            return ColumnDecision("number", why, dayfirst, unit, False)
        if share["date"] >= tolerance:
            return ColumnDecision(
                "date",
                f"{pct('date')} {n} values are dates" + self._order(dayfirst),
                dayfirst,
                None,
                False,
            )
        if share["datetime"] >= tolerance:
            why = f"{pct('datetime')} {n} values are dates with times" + self._order(dayfirst)
            if self.with_tz:
                why += "; time zones converted to UTC"
            return ColumnDecision("datetime", why, dayfirst, None, bool(self.with_tz))
        best = max(share, key=share.get)
        why = "values are text"
        if share[best] > 0.5:
            why = (
                f"only {100 * share[best]:.1f}% of values are {best} values,"
                " so the column stays text"
            )
        return ColumnDecision("string", why, dayfirst, None, False)

    def _dayfirst(self) -> bool | None:
        if self.locale.dayfirst is not None and not (self.day_over_12 and not self.month_over_12):
            if self.month_over_12 and not self.day_over_12:
                return False
            return self.locale.dayfirst
        if self.day_over_12 and not self.month_over_12:
            return True
        if self.month_over_12 and not self.day_over_12:
            return False
        return self.locale.dayfirst

    def _order(self, dayfirst: bool | None) -> str:
        if not (
            self.day_over_12 or self.month_over_12 or self.fits["date"] or self.fits["datetime"]
        ):
            return ""
        if dayfirst is None:
            return ""
        return " (day first)" if dayfirst else " (month first)"


@dataclass
class ColumnDecision:
    """A column's decided type and what converting to it needs."""

    type: str
    reason: str
    dayfirst: bool | None
    unit: str | None
    tz: bool

    def arrow_type(self) -> pa.DataType:
        return {
            "boolean": pa.bool_(),
            "integer": pa.int64(),
            "number": pa.float64(),
            "date": pa.date32(),
            "datetime": pa.timestamp("us", tz="UTC") if self.tz else pa.timestamp("us"),
            "string": pa.string(),
        }[self.type]


def clean_text(arr: pa.Array) -> tuple[pa.Array, int]:
    """Trim whitespace and turn null tokens into nulls; returns (values, cells trimmed)."""
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    trimmed = pc.utf8_trim_whitespace(arr)
    changed = pc.sum(pc.not_equal(trimmed, arr)).as_py() or 0
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
        valid = _mask_invalid(values, integer_re)
        if locale.thousands:
            valid = pc.replace_substring(valid, locale.thousands, "")
        return _cast_or_coerce(valid, pa.int64())
    if kind == "number":
        if locale.decimal == "." and (fast := _try_cast(values, pa.float64())) is not None:
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
        if (fast := _try_cast(values, pa.date32())) is not None:
            return fast
        valid = _mask_invalid(values, DATE_RE)
        formats = ["%Y-%m-%d", "%Y/%m/%d"]
        order = ("%d", "%m") if decision.dayfirst else ("%m", "%d")
        formats += [f"{order[0]}{s}{order[1]}{s}%Y" for s in "/.-"]
        parsed = pc.coalesce(
            *[pc.strptime(valid, format=f, unit="s", error_is_null=True) for f in formats]
        )
        return parsed.cast(pa.date32())
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
