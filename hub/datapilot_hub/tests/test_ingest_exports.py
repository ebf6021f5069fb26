"""Ingestion of files the way government portals and statistics agencies export them.

Workbooks whose table starts below titles, notes and merged group headers, read-me sheets
first, a column of mixed cells; CSVs with line breaks in header cells; counts where a few
values are halves; dates in the forms such exports use. Each file is written here the
way those exports are; both catalog backends (through the ``corpus`` fixture).
"""

from __future__ import annotations

import datetime as dt
import io

import pytest

from .test_ingest import corpus, types_of  # noqa: F401 (the fixture)

openpyxl = pytest.importorskip("openpyxl")


def _book(sheets: dict[str, list[list]], merged: dict[str, list[str]] | None = None) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
        for cells in (merged or {}).get(name, []):
            ws.merge_cells(cells)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---- nothing a user typed is lost -----------------------------------------------------


async def test_counts_where_a_few_values_are_halves_are_numbers(corpus):  # noqa: F811
    # a statistics export: large counts with thousands separators, a few of them halves
    rows = ["Area,Households,Persons"]
    for i in range(400):
        half = ".5" if i % 97 == 0 else ""
        rows.append(f'Area {i},"{1_000_000 + i * 1_234:,}{half}",{i * 3}')
    info = corpus.ok("\n".join(rows).encode(), "households.csv", "households")
    assert types_of(info) == {"area": "string", "households": "number", "persons": "integer"}
    report = info["report"]
    assert report["columns"]["households"]["invalid"]["count"] == 0
    assert "not all whole" in report["columns"]["households"]["reason"]
    df = corpus.frame("households")
    assert df["households"].iloc[0] == 1_000_000.5 and df["households"].iloc[1] == 1_001_234
    assert df["households"].isna().sum() == 0


async def test_dates_where_a_few_have_times_are_datetimes(corpus):  # noqa: F811
    rows = ["id,recorded"] + [f"{i},2024-03-{1 + i % 28:02d}" for i in range(60)]
    rows[10] = "9,2024-03-10 14:30:00"
    info = corpus.ok("\n".join(rows).encode(), "log.csv", "log")
    assert types_of(info)["recorded"] == "datetime"
    assert info["report"]["columns"]["recorded"]["invalid"]["count"] == 0
    df = corpus.frame("log")
    assert df["recorded"].iloc[9] == dt.datetime(2024, 3, 10, 14, 30)
    assert df["recorded"].iloc[0] == dt.datetime(2024, 3, 1)


async def test_values_of_another_family_are_counted_not_dropped(corpus):  # noqa: F811
    rows = ["n"] + [str(i) for i in range(100)] + ["see note 3"]
    info = corpus.ok("\n".join(rows).encode(), "n.csv", "n")
    column = info["report"]["columns"]["n"]
    assert info["columns"][0]["type"] == "integer"
    assert column["invalid"] == {"count": 1, "rows": [101], "examples": ["see note 3"]}
    assert "1 fit no such type and are invalid" in column["reason"]


# ---- workbooks whose table does not start in A1 --------------------------------------


def _statistics_workbook() -> bytes:
    """A statistics agency's table: title, notes, a merged group header, the header at
    row 12 with a vertically merged first cell and repeated labels, footnote markers."""
    rows: list[list] = [
        ["Table 4.2: Population by region and sex, 2020 and 2021"],
        [],
        ["Source: Census of population"],
        ["Notes:"],
        ["1. Figures are rounded to the nearest ten."],
        ["2. '..' means not available."],
        [],
        ["Released 1 March 2022"],
        [],
        [],
        ["Region", "2020", None, "2021", None, "Change"],
        [None, "Male", "Female", "Male", "Female", None],
        ["North", 1200, 1250, 1210, 1260.5, 0.8],
        ["South", 980, 1010, "..", 1020, 1.0],
        ["East", 1500, 1490, 1510, 1500, -0.1],
        ["West", 700, 720, 705, 725, 0.7],
    ]
    merged = ["B11:C11", "D11:E11", "A11:A12", "F11:F12"]
    return _book({"Table 4.2": rows}, {"Table 4.2": merged})


async def test_workbook_table_below_titles_notes_and_merged_group_headers(corpus):  # noqa: F811
    info = corpus.ok(_statistics_workbook(), "population.xlsx", "population")
    assert [c["label"] for c in info["columns"]] == [
        "Region",
        "2020 Male",
        "2020 Female",
        "2021 Male",
        "2021 Female",
        "Change",
    ]
    assert types_of(info) == {
        "region": "string",
        "c_2020_male": "integer",
        "c_2020_female": "integer",
        "c_2021_male": "integer",
        "c_2021_female": "number",
        "change": "number",
    }
    report = info["report"]
    assert report["sheet"] == "Table 4.2" and report["header_row"] == 12
    assert report["header_reason"].startswith("row 12:")
    assert report["above_header"][0].startswith("Table 4.2: Population")
    # ".." is "not available" in such tables: a null, counted
    assert report["columns"]["c_2021_male"]["nulls"] == 1
    assert info["rows"] == 4
    df = corpus.frame("population")
    assert df["region"].tolist() == ["North", "South", "East", "West"]
    assert df["c_2021_female"].tolist() == [1260.5, 1020.0, 1500.0, 725.0]


async def test_numbers_among_markers_keep_every_digit(corpus):  # noqa: F811
    # a column of rates with ".." where a rate is not available: the reader makes it text
    rates = [0.1234567890123, "..", 2 / 3, 12.5, 1e-12]
    rows = [["Region", "Rate"]] + [[f"R{i}", rate] for i, rate in enumerate(rates)]
    info = corpus.ok(_book({"Rates": rows}), "rates.xlsx", "rates")
    assert types_of(info)["rate"] == "number"
    got = corpus.frame("rates")["rate"].tolist()
    assert got[0] == 0.1234567890123 and got[2] == 2 / 3 and got[4] == 1e-12
    assert got[3] == 12.5 and got[1] != got[1]  # ".." is not available: null


async def test_workbook_header_whose_first_cell_is_the_number_0(corpus):  # noqa: F811
    rows = [
        [0, "Region", "Population", "Area (km2)", "Surveyed"],
        [1, "North", 120_000, 35.5, dt.date(2021, 5, 1)],
        [2, "South", 98_000, 12.25, dt.date(2021, 6, 1)],
        [3, "East", 150_000, 40.0, dt.date(2021, 7, 1)],
    ]
    info = corpus.ok(_book({"Data": rows}), "regions.xlsx", "regions")
    assert [c["label"] for c in info["columns"]] == [
        "0",
        "Region",
        "Population",
        "Area (km2)",
        "Surveyed",
    ]
    assert types_of(info) == {
        "c_0": "integer",
        "region": "string",
        "population": "integer",
        "area_km2": "number",
        "surveyed": "date",
    }
    assert info["rows"] == 3 and info["report"]["header_row"] == 1


async def test_workbook_with_years_as_column_labels(corpus):  # noqa: F811
    rows = [
        ["Gross domestic product, current prices"],
        [],
        ["Country", 2019, 2020, 2021],
        ["A", 101.5, 98.25, 104.0],
        ["B", 55.0, 54.5, 57.75],
    ]
    info = corpus.ok(_book({"GDP": rows}), "gdp.xlsx", "gdp")
    assert [c["label"] for c in info["columns"]] == ["Country", "2019", "2020", "2021"]
    assert types_of(info)["c_2020"] == "number" and info["report"]["header_row"] == 3


async def test_workbook_of_values_without_a_header_or_below_empty_rows(corpus):  # noqa: F811
    rows = [[1, 2.5, dt.date(2024, 1, 1)], [2, 3.5, dt.date(2024, 1, 2)]]
    info = corpus.ok(_book({"Raw": rows}), "raw.xlsx", "raw")
    assert types_of(info) == {"column_1": "integer", "column_2": "number", "column_3": "date"}
    assert info["rows"] == 2 and info["report"]["header_row"] is None
    # the table starts on the fourth row, rows 1-3 empty
    rows = [[], [], [], ["id", "amount"], [1, 2.5], [2, 3.5]]
    info = corpus.ok(_book({"Low": rows}), "low.xlsx", "low")
    assert types_of(info) == {"id": "integer", "amount": "number"}
    assert info["report"]["header_row"] == 4 and info["rows"] == 2
    info = corpus.ok(_book({"Low": rows}), "low.xlsx", "low2", options={"header": False})
    assert info["rows"] == 3 and info["report"]["header_row"] is None


async def test_workbook_written_by_pandas_with_its_index(corpus):  # noqa: F811
    import pandas as pd

    frame = pd.DataFrame({"Amount": [1.5, 2.25, 3.0], "Code": ["007", "042", "100"]})
    buf = io.BytesIO()
    frame.to_excel(buf, sheet_name="Sheet1")  # the index's header cell is empty
    info = corpus.ok(buf.getvalue(), "frame.xlsx", "frame")
    assert types_of(info) == {"column_1": "integer", "amount": "number", "code": "string"}
    assert info["report"]["header_row"] == 1 and info["rows"] == 3


async def test_workbook_with_read_me_sheets_first(corpus):  # noqa: F811
    readme = [
        ["About this dataset"],
        ["This workbook holds the monthly counts of registered vehicles by fuel type."],
        ["Contact: statistics@example.org"],
    ]
    notes = [["Term", "Meaning"], ["BEV", "Battery electric vehicle"], ["PHEV", "Plug-in hybrid"]]
    data = [["Month", "Fuel", "Vehicles"]] + [
        [dt.date(2024, m, 1), fuel, 1000 * m + i]
        for m in range(1, 7)
        for i, fuel in enumerate(("BEV", "PHEV"))
    ]
    book = _book({"Read me": readme, "Notes": notes, "Vehicles": data})
    info = corpus.ok(book, "vehicles.xlsx", "vehicles")
    report = info["report"]
    assert report["sheet"] == "Vehicles" and report["sheets"] == ["Read me", "Notes", "Vehicles"]
    assert "'Read me', 'Notes'" in report["sheet_reason"]
    assert types_of(info) == {"month": "date", "fuel": "string", "vehicles": "integer"}
    assert info["rows"] == 12
    # the user can still choose a sheet
    info = corpus.ok(book, "vehicles.xlsx", "terms", options={"sheet": "Notes"})
    assert info["report"]["sheet"] == "Notes" and info["report"]["sheet_reason"] == (
        "set by options.sheet"
    )
    assert types_of(info) == {"term": "string", "meaning": "string"}


async def test_one_odd_column_becomes_text_and_the_sheet_comes_in(corpus):  # noqa: F811
    rows = [["Case", "Response", "Handled", "Opened at", "Wait"]]
    odd = [1.5, dt.timedelta(hours=1, minutes=30), "not recorded", 1 / 3]
    for i in range(8):
        rows.append(
            [
                i + 1,
                odd[i % 4],
                i % 2 == 0,
                dt.time(9 + i, 15),
                dt.timedelta(minutes=5 * i + 1),
            ]
        )
    info = corpus.ok(_book({"Cases": rows}), "cases.xlsx", "cases")
    assert types_of(info) == {
        "case": "integer",
        "response": "string",
        "handled": "boolean",
        "opened_at": "string",
        "wait": "string",
    }
    df = corpus.frame("cases")
    # the odd column's cells as they are, nothing rounded
    assert df["response"].tolist()[:4] == ["1.5", "1:30:00", "not recorded", "0.3333333333333333"]
    assert df["opened_at"].tolist()[:2] == ["09:15:00", "10:15:00"]
    assert df["wait"].tolist()[:2] == ["0:01:00", "0:06:00"]
    assert any("read as text" in w for w in info["report"]["warnings"])
    assert info["rows"] == 8


async def test_every_sheet_with_an_odd_column_and_a_title(corpus):  # noqa: F811
    book = _book(
        {
            "Summary": [["Summary of cases"], [], ["Region", "Cases"], ["North", 3], ["South", 5]],
            "Cases": [["Case", "Response"], [1, dt.timedelta(hours=2)], [2, "n/a text"], [3, 2.5]],
        }
    )
    job = corpus.ingest(book, "book.xlsx", "book", options={"sheet": "*"})
    assert job["state"] == "succeeded", job
    summary = corpus.service.describe(corpus.ctx, "book_summary")
    assert types_of(summary) == {"region": "string", "cases": "integer"}
    assert summary["report"]["header_row"] == 3
    cases = corpus.service.describe(corpus.ctx, "book_cases")
    assert types_of(cases)["response"] == "string"


# ---- CSV ------------------------------------------------------------------------------


async def test_csv_header_cells_with_line_breaks(corpus):  # noqa: F811
    csv = (
        b'"Region","Population\n(thousands)","Area\r\n(km2)","Density\n(per km2)"\r\n'
        b"North,1.5,10,150\r\n"
        b"South,2.5,20,125\r\n"
    )
    info = corpus.ok(csv, "density.csv", "density")
    assert [c["label"] for c in info["columns"]] == [
        "Region",
        "Population (thousands)",
        "Area (km2)",
        "Density (per km2)",
    ]
    assert info["rows"] == 2 and info["report"]["rows_rejected"] == 0
    assert corpus.frame("density")["area_km2"].tolist() == [10, 20]


async def test_csv_with_title_lines_and_a_header_with_line_breaks(corpus):  # noqa: F811
    csv = (
        b"Monthly arrivals\n"
        b"Provisional figures\n"
        b'"Month","Arrivals\n(persons)"\n'
        b"2024-01,1200\n"
        b"2024-02,1350\n"
    )
    info = corpus.ok(csv, "arrivals.csv", "arrivals")
    assert [c["label"] for c in info["columns"]] == ["Month", "Arrivals (persons)"]
    assert corpus.frame("arrivals")["arrivals_persons"].tolist() == [1200, 1350]
    report = info["report"]
    assert report["header_row"] == 3
    assert report["above_header"] == ["Monthly arrivals", "Provisional figures"]


# ---- dates ----------------------------------------------------------------------------


async def test_dates_as_government_exports_write_them(corpus):  # noqa: F811
    csv = (
        b"ref,date_received,DATE_CLOSED,period_code,logged\n"
        b"1,05-01-24,20240131,20240131,2024/01/05\n"
        b"2,17-02-24,20240229,20240229,2024/02/17 09:30\n"
        b"3,01-03-24,20240302,20240302,2024/03/01 17:05:10\n"
    )
    info = corpus.ok(csv, "cases.csv", "cases")
    assert types_of(info) == {
        "ref": "integer",
        "date_received": "date",
        "date_closed": "date",
        # yyyymmdd is a date only in a column named like one
        "period_code": "integer",
        "logged": "datetime",
    }
    df = corpus.frame("cases")
    assert [d.isoformat() for d in df["date_received"]] == [
        "2024-01-05",
        "2024-02-17",
        "2024-03-01",
    ]
    assert [d.isoformat() for d in df["date_closed"]] == ["2024-01-31", "2024-02-29", "2024-03-02"]
    assert df["logged"].iloc[0] == dt.datetime(2024, 1, 5)
    assert df["logged"].iloc[2] == dt.datetime(2024, 3, 1, 17, 5, 10)
    columns = info["report"]["columns"]
    assert "yyyymmdd" in columns["date_closed"]["reason"]
    assert "(day first: 1 value(s) have a day above 12)" in columns["date_received"]["reason"]


async def test_ambiguous_dates_follow_the_other_date_columns_of_the_file(corpus):  # noqa: F811
    # every day of "start" is 12 or less; "end" has days above 12: day first
    csv = (
        b"id,start,end\n1,03/04/2024,25/04/2024\n2,05/06/2024,13/06/2024\n3,11/12/2024,31/12/2024\n"
    )
    info = corpus.ok(csv, "spans.csv", "spans")
    df = corpus.frame("spans")
    assert [d.isoformat() for d in df["start"]] == ["2024-04-03", "2024-06-05", "2024-12-11"]
    reason = info["report"]["columns"]["start"]["reason"]
    assert "day first, as column(s) 'end' of this file" in reason
    assert info["report"]["dayfirst"] is True
    assert not any("ambiguous" in w for w in info["report"]["warnings"])


async def test_ambiguous_dates_follow_the_files_locale(corpus):  # noqa: F811
    csv = b"Datum;Betrag\n03.04.2024;1.234,50\n05.06.2024;99,95\n11.12.2024;7,00\n"
    info = corpus.ok(csv, "buchungen.csv", "buchungen")
    df = corpus.frame("buchungen")
    assert [d.isoformat() for d in df["datum"]] == ["2024-04-03", "2024-06-05", "2024-12-11"]
    report = info["report"]
    assert report["dayfirst"] is True
    assert "';' between fields and decimal commas" in report["day_order"]
    assert report["day_order"] in report["columns"]["datum"]["reason"]


async def test_ambiguous_dates_with_nothing_to_say_the_order_are_a_warning(corpus):  # noqa: F811
    info = corpus.ok(b"id,on\n1,03/04/2024\n2,05/06/2024\n", "on.csv", "on")
    assert corpus.frame("on")["on"].iloc[0].isoformat() == "2024-03-04"
    assert any("ambiguous" in w for w in info["report"]["warnings"])
    assert info["report"]["dayfirst"] is None


async def test_every_column_says_why_it_got_its_type(corpus):  # noqa: F811
    info = corpus.ok(_statistics_workbook(), "population.xlsx", "why")
    for name, column in info["report"]["columns"].items():
        assert column["reason"], name
