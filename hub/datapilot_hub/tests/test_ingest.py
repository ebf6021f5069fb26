"""Ingestion on a corpus of messy real-world files (both catalog backends, local and S3).

Each file is made here the way the program that usually produces it would write it,
and the expected types, values and report are checked.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import time
import zipfile

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datapilot_hub.catalog import Job
from datapilot_hub.domain.datasets import DatasetService, ReadRequest
from datapilot_hub.domain.ingest import (
    Ingestor,
    IngestRequest,
    Limits,
    Sniffed,
    normalize_names,
    sniff,
    validate_options,
)
from datapilot_hub.domain.jobs import JobRunner
from datapilot_hub.errors import DatapilotError

from .utils import lying_workbook


class Corpus:
    """Runs files through the real pipeline for one organization."""

    def __init__(self, catalog, storage, ctx, tmp_path, limits=None):
        self.catalog, self.storage, self.ctx, self.tmp = catalog, storage, ctx, tmp_path
        self.limits = limits or Limits()
        self.service = DatasetService(catalog, storage)

    def ingest(self, content: bytes, filename: str, name: str, mode="create", options=None):
        src = self.tmp / f"upload-{time.monotonic_ns()}"
        src.write_bytes(content)
        options = options or {}
        sniffed = sniff(str(src), filename, options, self.limits)
        runner = JobRunner(self.catalog, self.storage)
        job = runner.create(self.ctx, "ingest", name)
        req = IngestRequest(
            self.ctx.org_id,
            name,
            mode,
            str(src),
            filename,
            self.ctx.caller.name,
            options,
            sniffed.to_json(),
        )
        ingestor = Ingestor(self.catalog, self.storage, self.limits, str(self.tmp))
        runner.submit(job["id"], self.ctx.org_id, lambda h: ingestor.run(req, h))
        deadline = time.monotonic() + 60
        while (state := runner.get(self.ctx, job["id"]))["state"] not in Job.FINAL_STATES:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        runner.shutdown()
        return state

    def ok(self, content, filename, name, **kw):
        job = self.ingest(content, filename, name, **kw)
        assert job["state"] == "succeeded", job
        return self.service.describe(self.ctx, name)

    def frame(self, name, version=None) -> pd.DataFrame:
        req = ReadRequest(format="parquet", version=version)
        target = self.service.resolve_read(self.ctx, name, req)
        return pq.read_table(io.BytesIO(b"".join(self.service.iter_data(target, req)))).to_pandas()


@pytest.fixture
async def corpus(catalog, storage, two_orgs, tmp_path):
    return Corpus(catalog, storage, two_orgs["alpha", "alice"], tmp_path)


def types_of(info):
    return {c["name"]: c["type"] for c in info["columns"]}


def test_normalize_names():
    assert normalize_names(["Order ID", "order id", "", "2024 Sales (€)", "Città"]) == [
        "order_id",
        "order_id_2",
        "column_3",
        "c_2024_sales",
        "citta",
    ]


async def test_european_csv(corpus):
    csv = (
        (
            "Kunde;Betrag;Datum;Bezahlt;Anteil\n"
            "Müller;1.234,56 €;31.01.2024;ja;12,5%\n"
            "Schmidt;-7,00 €;02.02.2024;nein;3%\n"
            "Weiß;1.000.000,00 €;15.03.2024;ja;100%\n"
        )
        .encode("cp1252")
        .replace(b"ja", b"yes")
        .replace(b"nein", b"no")
    )
    info = corpus.ok(csv, "export.csv", "kunden")
    assert types_of(info) == {
        "kunde": "string",
        "betrag": "number",
        "datum": "date",
        "bezahlt": "boolean",
        "anteil": "number",
    }
    report = info["report"]
    assert report["encoding"] == "cp1252" and report["delimiter"] == ";"
    assert report["decimal"] == "," and report["dayfirst"] is True
    df = corpus.frame("kunden")
    assert df["kunde"].tolist() == ["Müller", "Schmidt", "Weiß"]
    assert df["betrag"].tolist() == [1234.56, -7.0, 1000000.0]
    assert [d.isoformat() for d in df["datum"]] == ["2024-01-31", "2024-02-02", "2024-03-15"]
    assert df["bezahlt"].tolist() == [True, False, True]
    assert df["anteil"].tolist() == [12.5, 3.0, 100.0]
    units = {
        c["name"]: c.get("unit") for c in corpus.service.describe(corpus.ctx, "kunden")["columns"]
    }
    assert report["columns"]["betrag"]["unit"] == "€" and report["columns"]["anteil"]["unit"] == "%"
    assert units["betrag"] == "€"


async def test_us_sales_export_with_bad_cells(corpus):
    rows = ["Order Date,Region,Rep,Units,Unit Cost,Total,Shipped"]
    for i in range(200):
        rows.append(
            f'{1 + i % 12}/{1 + i % 28}/2024,East,Jones,{i},"$1,{i % 10}99.99","${i * 3},000.50",Y'
        )
    rows[50] = "13/45/2024,East,Jones,oops,n/a,$5.00,N"  # a broken row: bad date, bad units
    rows.append("  ,  ,  ,  ,  ,  ,  ")  # spaces only: an empty row
    rows.append("")
    info = corpus.ok("\n".join(rows).encode() + b"\n\n", "sales.csv", "sales")
    assert types_of(info) == {
        "order_date": "date",
        "region": "string",
        "rep": "string",
        "units": "integer",
        "unit_cost": "number",
        "total": "number",
        "shipped": "boolean",
    }
    report = info["report"]
    assert "(month first: " in report["columns"]["order_date"]["reason"]
    units = report["columns"]["units"]["invalid"]
    assert units["count"] == 1 and units["rows"] == [50] and units["examples"] == ["oops"]
    assert report["columns"]["order_date"]["invalid"]["examples"] == ["13/45/2024"]
    assert report["columns"]["unit_cost"]["nulls"] == 1  # n/a is a null token, not invalid
    assert report["rows_empty_dropped"] == 1
    assert info["rows"] == 200
    df = corpus.frame("sales")
    assert df["unit_cost"].iloc[0] == 1099.99 and df["total"].iloc[1] == 3000.5
    # stored as 64-bit integers (pandas shows a column with a null as float)
    req = ReadRequest(format="arrow")
    target = corpus.service.resolve_read(corpus.ctx, "sales", req)
    schema = pa.ipc.open_stream(b"".join(corpus.service.iter_data(target, req))).schema
    assert schema.field("units").type == pa.int64()


async def test_codes_with_leading_zeros_stay_text(corpus):
    csv = b"zip,sku,account,amount\n02134,A-100,12345678901234567890123,5\n90210,100,00000000000000000000001,6\n00501,B7,1,7\n"
    info = corpus.ok(csv, "codes.csv", "codes")
    assert types_of(info) == {
        "zip": "string",
        "sku": "string",
        "account": "string",
        "amount": "integer",
    }
    assert "leading zeros" in info["report"]["columns"]["zip"]["reason"]
    assert (
        "64-bit" in info["report"]["columns"]["account"]["reason"]
        or "leading zeros" in info["report"]["columns"]["account"]["reason"]
    )
    assert corpus.frame("codes")["zip"].tolist() == ["02134", "90210", "00501"]


async def test_utf16_export_with_bom_and_tabs(corpus):
    text = "Name\tScore\tWhen\r\nÅsa\t1.5\t2024-05-01T10:00:00Z\r\nZoë\t2.25\t2024-05-02T11:30:00+02:00\r\n"
    info = corpus.ok(text.encode("utf-16"), "report.txt", "scores")
    assert info["report"]["encoding"] == "utf-16" and info["report"]["delimiter"] == "\t"
    assert types_of(info) == {"name": "string", "score": "number", "when": "datetime"}
    df = corpus.frame("scores")
    assert df["name"].tolist() == ["Åsa", "Zoë"]
    assert [t.isoformat() for t in df["when"]] == [
        "2024-05-01T10:00:00+00:00",
        "2024-05-02T09:30:00+00:00",
    ]


async def test_utf8_bom_quotes_newlines_and_ragged_rows(corpus):
    csv = (
        '\ufeff"id","note","value"\n'
        '1,"line one\nline two",10\n'
        '2,"she said ""hi""",20\n'
        "3,too,many,fields,30\n"
        '4,"ok",40\n'
    ).encode()
    info = corpus.ok(csv, "notes.csv", "notes")
    assert [c["label"] for c in info["columns"]] == ["id", "note", "value"]
    df = corpus.frame("notes")
    assert df["note"].tolist() == ["line one\nline two", 'she said "hi"', "ok"]
    report = info["report"]
    assert report["rows_rejected"] == 1 and report["rejected"][0]["fields"] == 5
    assert any("wrong number of fields" in w for w in report["warnings"])


async def test_title_lines_above_the_header_are_skipped(corpus):
    csv = b"Quarterly report\nGenerated 2024-07-01\n\nregion,q1,q2\nnorth,1,2\nsouth,3,4\n"
    info = corpus.ok(csv, "q.csv", "quarters")
    assert [c["name"] for c in info["columns"]] == ["region", "q1", "q2"]
    assert corpus.frame("quarters")["q2"].tolist() == [2, 4]


async def test_file_without_header(corpus):
    info = corpus.ok(b"1,2.5,x\n2,3.5,y\n", "raw.csv", "raw")
    assert [c["name"] for c in info["columns"]] == ["column_1", "column_2", "column_3"]
    assert info["rows"] == 2


async def test_type_overrides_are_kept_for_later_versions(corpus):
    info = corpus.ok(
        b"code,qty\n123,1\n456,2\n", "a.csv", "orders", options={"types": {"code": "string"}}
    )
    assert types_of(info)["code"] == "string"
    info = corpus.ok(b"code,qty\n789,3\n", "b.csv", "orders", mode="replace")
    assert types_of(info)["code"] == "string"
    assert "options.types" in info["report"]["columns"]["code"]["reason"]


async def test_append_checks_names_and_types(corpus):
    corpus.ok(b"id,amount\n1,2.5\n", "a.csv", "ledger")
    job = corpus.ingest(b"id,amount,extra\n2,3.5,x\n", "b.csv", "ledger", mode="append")
    assert job["state"] == "failed" and "'extra' is new" in job["error"]
    assert job["result"]["error"] == "schema_mismatch" and job["result"]["status"] == 409
    job = corpus.ingest(b"id,amount\nx,y\nz,w\n", "c.csv", "ledger", mode="append")
    assert job["state"] == "failed" and "'id'" in job["error"]
    info = corpus.ok(
        b"id,amount,extra\n2,3.5,x\n",
        "d.csv",
        "ledger",
        mode="append",
        options={"allow_schema_change": True},
    )
    df = corpus.frame("ledger")
    assert df["id"].tolist() == [1, 2] and pd.isna(df["extra"][0]) and df["extra"][1] == "x"
    assert info["version"] == 4 and [v["version"] for v in info["versions"]] == [1, 4]


async def test_dedupe_and_empty_columns(corpus):
    csv = b"a,b,empty\n1,x,\n1,x,\n2,y,\n1,x,\n"
    info = corpus.ok(csv, "d.csv", "dd", options={"dedupe": True})
    assert [c["name"] for c in info["columns"]] == ["a", "b"]
    assert info["report"]["columns_dropped"] == ["empty"]
    assert info["report"]["duplicates_removed"] == 2 and info["rows"] == 2


async def test_workbook_with_two_sheets(corpus):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Summary"
    ws.append(["Sales 2024"])
    ws.append([])
    ws.append(["Region", "Revenue", "Closed", "Since", "Code"])
    ws.append(["North", 1200.5, True, dt.date(2020, 1, 5), "007"])
    ws.append(["South", 980, False, dt.datetime(2021, 6, 1, 9, 30), "042"])
    other = wb.create_sheet("Details")
    other.append(["id", "note"])
    other.append([1, "first"])
    buf = io.BytesIO()
    wb.save(buf)
    info = corpus.ok(buf.getvalue(), "book.xlsx", "summary")
    assert (
        info["report"]["sheets"] == ["Summary", "Details"] and info["report"]["sheet"] == "Summary"
    )
    assert types_of(info) == {
        "region": "string",
        "revenue": "number",
        "closed": "boolean",
        "since": "datetime",
        "code": "string",
    }
    assert corpus.frame("summary")["code"].tolist() == ["007", "042"]
    info = corpus.ok(buf.getvalue(), "book.xlsx", "details", options={"sheet": "Details"})
    assert types_of(info) == {"id": "integer", "note": "string"}
    job = corpus.ingest(buf.getvalue(), "book.xlsx", "nosheet", options={"sheet": "Nope"})
    assert job["state"] == "failed" and "Summary, Details" in job["error"]


def _three_sheet_workbook(extra_columns: int = 0) -> bytes:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Q1 Sales"
    ws.append(["Sales, first quarter"])
    ws.append([])
    ws.append(["Region", "Revenue", "Closed"])
    ws.append(["North", 1200.5, True])
    ws.append(["South", 980, False])
    wb.create_sheet("Notes")  # empty: skipped, and said so
    other = wb.create_sheet("Customers")
    other.append(["id", "since"] + [f"x{i}" for i in range(extra_columns)])
    other.append([1, dt.date(2020, 1, 5)] + [1] * extra_columns)
    other.append([2, dt.date(2021, 6, 1)] + [2] * extra_columns)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


async def test_every_sheet_of_a_workbook_in_one_job(corpus):
    job = corpus.ingest(_three_sheet_workbook(), "book.xlsx", "book", options={"sheet": "*"})
    assert job["state"] == "succeeded", job
    assert job["result"]["datasets"] == [
        {"dataset": "book_q1_sales", "version": 1, "rows": 2, "sheet": "Q1 Sales"},
        {"dataset": "book_customers", "version": 1, "rows": 2, "sheet": "Customers"},
    ]
    assert [s["sheet"] for s in job["result"]["skipped"]] == ["Notes"]
    sales = corpus.service.describe(corpus.ctx, "book_q1_sales")
    assert types_of(sales) == {"region": "string", "revenue": "number", "closed": "boolean"}
    assert sales["report"]["sheet"] == "Q1 Sales" and sales["report"]["skipped_lines"] == 2
    customers = corpus.service.describe(corpus.ctx, "book_customers")
    assert types_of(customers) == {"id": "integer", "since": "date"}
    # replace: every sheet gets its next version, in the same one job
    job = corpus.ingest(
        _three_sheet_workbook(), "book.xlsx", "book", mode="replace", options={"sheet": "*"}
    )
    assert [d["version"] for d in job["result"]["datasets"]] == [2, 2], job


async def test_every_sheet_is_all_or_nothing(corpus, tmp_path):
    limited = Corpus(corpus.catalog, corpus.storage, corpus.ctx, tmp_path, Limits(max_columns=4))
    # the first sheet is fine, the last one has too many columns: neither is published
    job = limited.ingest(
        _three_sheet_workbook(extra_columns=5), "book.xlsx", "book", options={"sheet": "*"}
    )
    assert job["state"] == "failed" and job["result"]["error"] == "too_many_columns", job
    assert "Sheet 'Customers'" in job["error"]
    assert corpus.service.list(corpus.ctx) == []
    for name in ("book_q1_sales", "book_customers"):
        assert corpus.storage.files(f"org-{corpus.ctx.org_id}/datasets/{name}") == []
    job = corpus.ingest(b"a,b\n1,2\n", "t.csv", "t", options={"sheet": "*"})
    assert job["state"] == "failed" and "every sheet of a workbook" in job["error"]


async def test_workbook_headers_keep_their_labels(corpus):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.active.append(["Amount", None, "Amount", "Code_1"])
    wb.active.append([1.5, 2, 3, "x"])
    buf = io.BytesIO()
    wb.save(buf)
    info = corpus.ok(buf.getvalue(), "h.xlsx", "headers")
    # the reader renames empty and repeated header cells; the labels are the cells as written
    assert [(c["label"], c["name"]) for c in info["columns"]] == [
        ("Amount", "amount"),
        ("column_2", "column_2"),
        ("Amount", "amount_2"),
        ("Code_1", "code_1"),
    ]


async def test_opendocument_spreadsheet(corpus):
    pytest.importorskip("odf")
    frame = pd.DataFrame(
        {
            "Code": ["007", "042"],
            "Amount": [1.5, 2.25],
            "Day": pd.to_datetime(["2024-01-02", "2024-03-04"]),
        }
    )
    buf = io.BytesIO()
    frame.to_excel(buf, engine="odf", index=False, sheet_name="Data")
    info = corpus.ok(buf.getvalue(), "export.ods", "ods")
    assert types_of(info) == {"code": "string", "amount": "number", "day": "date"}
    assert info["report"]["format"] == "ods" and info["report"]["sheet"] == "Data"
    assert corpus.frame("ods")["code"].tolist() == ["007", "042"]


async def test_gzip_zip_and_json_lines(corpus):
    csv = b"a,b\n1,2\n3,4\n"
    assert corpus.ok(gzip.compress(csv), "data.csv.gz", "gz")["rows"] == 2
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner/data.csv", csv)
    assert corpus.ok(buf.getvalue(), "data.zip", "zipped")["rows"] == 2
    jsonl = b'{"id": "001", "n": 1.5, "ok": true}\n{"id": "002", "n": 2, "ok": false}\n'
    info = corpus.ok(jsonl, "rows.jsonl", "lines")
    assert types_of(info) == {"id": "string", "n": "number", "ok": "boolean"}


async def test_parquet_as_is(corpus):
    df = pd.DataFrame(
        {
            "x": [1, 2],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "c": pd.Categorical(["a", "b"]),
        }
    )
    buf = io.BytesIO()
    df.to_parquet(buf)
    info = corpus.ok(buf.getvalue(), "df.parquet", "pq")
    assert types_of(info) == {"x": "integer", "when": "datetime", "c": "string"}


@pytest.mark.parametrize(
    "content, filename, status, code",
    [
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "data.csv", 415, "unsupported_type"),
        (b"MZ\x90\x00" + b"\x00" * 100, "data.csv", 415, "unsupported_type"),
        (b"%PDF-1.7\n...", "data.csv", 415, "unsupported_type"),
        (bytes(range(256)) * 10, "data.csv", 415, "unsupported_type"),
        (b"", "data.csv", 422, "empty_file"),
        (b"PK\x03\x04garbage", "book.xlsx", 422, "corrupt_file"),
    ],
)
def test_garbage_is_refused_by_sniffing(tmp_path, content, filename, status, code):
    path = tmp_path / "f"
    path.write_bytes(content)
    with pytest.raises(DatapilotError) as e:
        sniff(str(path), filename, {}, Limits())
    assert (e.value.status, e.value.code) == (status, code)


def test_zip_bomb_is_refused_without_decompressing(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.csv", b"0" * (50 * 1024**2))
    with pytest.raises(DatapilotError) as e:
        sniff(str(path), "bomb.zip", {}, Limits(max_ratio=100))
    assert e.value.status == 413 and e.value.code == "compression_bomb"
    with pytest.raises(DatapilotError) as e:
        sniff(str(path), "bomb.zip", {}, Limits(max_uncompressed=10 * 1024**2, max_ratio=10**6))
    assert e.value.status == 413


def test_excel_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", b"<Types/>")
        zf.writestr("xl/workbook.xml", b"<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b" " * (64 * 1024**2))
    with pytest.raises(DatapilotError) as e:
        sniff(str(path), "bomb.xlsx", {}, Limits())
    assert e.value.code == "compression_bomb"


def test_workbook_parts_are_counted_as_they_inflate_not_read_from_the_directory(tmp_path):
    pytest.importorskip("openpyxl")
    path = tmp_path / "lying.xlsx"
    lying_workbook(path, 64 * 1024**2)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("xl/worksheets/sheet1.xml").file_size == 2000  # the directory lies
    with pytest.raises(DatapilotError) as e:
        sniff(str(path), "lying.xlsx", {}, Limits())
    assert (e.value.status, e.value.code) == (413, "compression_bomb")
    assert "xl/worksheets/sheet1.xml" in e.value.message
    # the total too, with any ratio allowed
    with pytest.raises(DatapilotError) as e:
        sniff(str(path), "lying.xlsx", {}, Limits(max_uncompressed=8 * 1024**2, max_ratio=10**6))
    assert e.value.code == "compression_bomb" and e.value.details["limit"] == 8 * 1024**2


async def test_a_gzip_bomb_is_stopped_while_it_inflates(corpus, tmp_path):
    # 16 KB that inflate to 16 MiB: stopped by its ratio once it has given 1 MiB
    bomb = gzip.compress(b"a,b\n" + b"0,0\n" * (4 * 1024**2), 9)
    job = corpus.ingest(bomb, "bomb.csv.gz", "bomb")
    assert job["state"] == "failed", job
    assert (job["result"]["status"], job["result"]["error"]) == (413, "compression_bomb")
    # stopped at max_uncompressed too, whatever the ratio
    big = Corpus(
        corpus.catalog,
        corpus.storage,
        corpus.ctx,
        tmp_path,
        Limits(max_uncompressed=4 * 1024**2, max_ratio=10**6),
    )
    job = big.ingest(bomb, "bomb.csv.gz", "bomb")
    assert job["state"] == "failed", job
    assert job["result"]["error"] == "compression_bomb"
    assert job["result"]["details"]["limit"] == 4 * 1024**2
    # and nothing is left: no dataset, no files, no spool
    assert corpus.service.list(corpus.ctx) == []
    assert corpus.storage.files(f"org-{corpus.ctx.org_id}/datasets/bomb") == []
    assert not list(tmp_path.glob("spool-*"))


def test_a_zip_member_is_counted_while_it_inflates(tmp_path):
    from datapilot_hub.domain.ingest._sniff import open_text_source

    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.csv", b"a,b\n" + b"0,0\n" * (2 * 1024**2))
    member = Sniffed(format="csv", compression="zip", member="data.csv")
    for limits in (Limits(), Limits(max_uncompressed=4 * 1024**2, max_ratio=10**6)):
        with pytest.raises(DatapilotError) as e:
            with open_text_source(str(path), member, limits, "data.zip") as f:
                while f.read(1024**2):
                    pass
        assert (e.value.status, e.value.code) == (413, "compression_bomb")
        assert "data.csv" in e.value.message


async def test_a_damaged_gzip_fails_its_job_as_corrupt(corpus):
    whole = gzip.compress(b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * 7) for i in range(200_000)))
    job = corpus.ingest(whole[: len(whole) // 2], "cut.csv.gz", "cut")
    assert job["state"] == "failed", job
    assert (job["result"]["status"], job["result"]["error"]) == (422, "corrupt_file")


async def test_a_first_line_longer_than_the_sample_is_read_to_its_end(corpus):
    title = b"Report: " + b"x" * (300 * 1024)  # one cell, longer than the sniffed sample
    info = corpus.ok(title + b"\nid,amount\n1,2.5\n2,3.5\n", "report.csv", "report")
    assert types_of(info) == {"id": "integer", "amount": "number"}
    assert info["report"]["skipped_lines"] == 1


def test_a_file_without_line_breaks_is_line_too_long(tmp_path):
    path = tmp_path / "one.csv"
    path.write_bytes(b"a" * (3 * 1024**2))
    with pytest.raises(DatapilotError) as e:
        sniff(str(path), "one.csv", {}, Limits())
    assert (e.value.status, e.value.code) == (422, "line_too_long")
    assert e.value.details["limit"] == Limits().max_line_bytes


@pytest.mark.parametrize(
    "content, filename",
    [
        (b"a,b\n1,2\n" + b"x" * (200 * 1024) + b",3\n4,5\n", "long.csv"),
        (b'{"a": 1}\n{"a": "' + b"x" * (200 * 1024) + b'"}\n', "long.jsonl"),
    ],
)
async def test_a_line_over_the_limit_fails_its_job_as_line_too_long(
    corpus, tmp_path, content, filename
):
    limited = Corpus(
        corpus.catalog, corpus.storage, corpus.ctx, tmp_path, Limits(max_line_bytes=64 * 1024)
    )
    job = limited.ingest(content, filename, "long")
    assert job["state"] == "failed", job
    assert (job["result"]["status"], job["result"]["error"]) == (422, "line_too_long")


@pytest.mark.parametrize(
    "options, field",
    [
        ({"encoding": "rot13"}, "options.encoding"),
        ({"encoding": "hex"}, "options.encoding"),
        ({"encoding": "no-such-codec"}, "options.encoding"),
        ({"encoding": 5}, "options.encoding"),
        ({"delimiter": 5}, "options.delimiter"),
        ({"delimiter": ";;"}, "options.delimiter"),
        ({"delimiter": '"'}, "options.delimiter"),
    ],
)
def test_bad_encoding_and_delimiter_options_are_400(options, field):
    with pytest.raises(DatapilotError) as e:
        validate_options(options)
    assert (e.value.status, e.value.details["field"]) == (400, field)


def test_known_encodings_and_delimiters_are_options():
    for options in ({"encoding": "latin-1"}, {"encoding": "UTF-16"}, {"delimiter": ";"}, {}):
        assert validate_options(options) == options


async def test_limits_on_columns_and_cells(corpus, tmp_path):
    small = Corpus(
        corpus.catalog,
        corpus.storage,
        corpus.ctx,
        tmp_path,
        Limits(max_columns=3, max_cell_bytes=10),
    )
    job = small.ingest(b"a,b,c,d\n1,2,3,4\n", "wide.csv", "wide")
    assert job["state"] == "failed" and job["result"]["error"] == "too_many_columns"
    job = small.ingest(b"a\n" + b"x" * 20 + b"\n", "cell.csv", "cell")
    assert job["state"] == "failed" and job["result"]["error"] == "cell_too_large"


async def test_failed_ingestion_leaves_no_version_and_no_files(corpus, tmp_path):
    limited = Corpus(
        corpus.catalog, corpus.storage, corpus.ctx, tmp_path, Limits(max_cell_bytes=100)
    )
    # the oversize cell is far into the file: pass one has spooled a lot by then
    rows = b"".join(b"%d,abc\n" % i for i in range(300_000))
    job = limited.ingest(b"n,s\n" + rows + b"1," + b"y" * 200 + b"\n", "big.csv", "broken")
    assert job["state"] == "failed", job
    assert corpus.service.list(corpus.ctx) == []
    assert corpus.storage.files(f"org-{corpus.ctx.org_id}/datasets/broken") == []
    assert not list(tmp_path.glob("spool-*"))


def test_reading_ahead_stops_when_the_reader_of_batches_stops():
    import threading

    from datapilot_hub.domain.ingest._pipeline import _prefetched

    batches = _prefetched(iter([pa.record_batch({"a": [i]}) for i in range(2)]))
    next(batches)
    time.sleep(0.3)  # the read-ahead thread has put the last batch and waits with the end
    closing = threading.Thread(target=batches.close)  # as when pass one fails here
    closing.start()
    closing.join(timeout=10)
    assert not closing.is_alive()


async def test_reads_are_scoped_and_permissioned(corpus, two_orgs):
    corpus.ok(b"a\n1\n2\n", "t.csv", "t")
    service = corpus.service
    with pytest.raises(DatapilotError) as e:
        service.describe(two_orgs["beta", "bob"], "t")
    assert e.value.status == 404
    assert service.list(two_orgs["beta", "bob"]) == []
    with pytest.raises(DatapilotError) as e:
        service.delete(two_orgs["alpha", "vera"], "t")
    assert e.value.status == 403


async def test_csv_download_neutralizes_formulas(corpus):
    corpus.ok(b"name,n\n=HYPERLINK(1),1\n+cmd,2\n-x,3\n@sum,4\nplain,-5\n", "f.csv", "formulas")
    req = ReadRequest(format="csv")
    target = corpus.service.resolve_read(corpus.ctx, "formulas", req)
    text = b"".join(corpus.service.iter_data(target, req)).decode()
    assert text.splitlines()[1:] == [
        '"\'=HYPERLINK(1)",1',
        '"\'+cmd",2',
        '"\'-x",3',
        '"\'@sum",4',
        '"plain",-5',
    ]


async def test_ingestion_into_s3_storage(catalog, s3_storage, two_orgs, tmp_path):
    """The S3 path against a real S3-compatible server on loopback."""
    s3 = Corpus(catalog, s3_storage, two_orgs["alpha", "alice"], tmp_path)
    df = pd.DataFrame({"x": range(1000), "y": [f"v{i}" for i in range(1000)]})
    buf = io.BytesIO()
    df.to_parquet(buf)
    s3.ok(buf.getvalue(), "r.parquet", "remote")
    files = s3_storage.files(f"org-{s3.ctx.org_id}/datasets/remote")
    assert files == [f"org-{s3.ctx.org_id}/datasets/remote/v1/part-0.parquet"]
    s3.ok(b"x,y\n1000,v1000\n", "more.csv", "remote", mode="append")
    req = ReadRequest(format="csv", offset=999, limit=2)
    target = s3.service.resolve_read(s3.ctx, "remote", req)
    text = b"".join(s3.service.iter_data(target, req)).decode()
    assert text.splitlines() == ['"x","y"', '999,"v999"', '1000,"v1000"']
    s3.service.delete(two_orgs["alpha", "mona"], "remote")
    assert s3_storage.files(f"org-{s3.ctx.org_id}/datasets/remote") == []


def test_storage_paths_cannot_escape(storage):
    with pytest.raises(ValueError):
        storage.full_path("../elsewhere")
    with pytest.raises(ValueError):
        storage.full_path("/etc/passwd")
    assert storage.dataset_version_dir(3, "sales", 2) == "org-3/datasets/sales/v2"


def test_arrow_types_are_the_contract_types():
    from datapilot_hub.domain.ingest import logical_type

    assert logical_type(pa.int64()) == "integer" and logical_type(pa.timestamp("us")) == "datetime"
