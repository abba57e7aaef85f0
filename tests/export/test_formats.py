"""Each format round-trips: the file read back has the same rows and column types as the
export relation; XLSX refuses more rows than a sheet holds; the partitioned layout."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import pandas as pd
import pytest

from credits_core.export import (
    OutputExists,
    PartitionNeedsMonth,
    PartitionNeedsParquet,
    TooManyRowsForSheet,
    UnknownFormat,
    UsageQuery,
    to_bytes,
    usage_export,
    write,
)
from credits_core.export.formats import XLSX_MAX_ROWS
from credits_core.ledger import Ledger
from tests.export.conftest import digest

READERS = {"csv": "read_csv", "parquet": "read_parquet", "jsonl": "read_json"}
SHAPES = [(), ("model", "day"), ("user", "month"), ("provider", "week", "plan")]


def relation(ledger, export) -> tuple[list[tuple], list[tuple[str, str]]]:
    """The export's rows (sorted) and (name, type) columns, straight from DuckDB."""

    def work(cur):
        export.prepare(cur)
        sql, params = export.sql()
        types = [(n, t) for n, t, *_ in cur.execute(f"DESCRIBE {sql}", params).fetchall()]
        return sorted(cur.execute(sql, params).fetchall(), key=repr), types

    return ledger._store.read(work)


def read_back(path: Path, format_: str) -> tuple[list[tuple], list[tuple[str, str]]]:
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        source = f"{READERS[format_]}($path)"
        types = [
            (n, t)
            for n, t, *_ in con.execute(
                f"DESCRIBE SELECT * FROM {source}", {"path": str(path)}
            ).fetchall()
        ]
        rows = con.execute(f"SELECT * FROM {source}", {"path": str(path)}).fetchall()
    return sorted(rows, key=repr), types


@pytest.mark.parametrize("format_", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("group_by", SHAPES)
def test_each_format_reads_back_with_the_same_rows_and_types(
    small, book, tmp_path, format_, group_by
):
    export = usage_export(UsageQuery(group_by=group_by), book)
    written = write(small, export, format_, tmp_path / f"usage.{format_}")
    expected_rows, expected_types = relation(small, export)
    rows, types = read_back(written.path, format_)
    assert written.rows == len(expected_rows) == len(rows) > 0
    assert [name for name, _ in types] == [c.name for c in export.query.columns]
    if format_ == "jsonl":  # JSON has one kind of number: integers may come back wider
        types = [(n, "BIGINT" if t == "HUGEINT" else t) for n, t in types]
    assert types == expected_types
    assert rows == expected_rows


def test_a_bigger_ledger_round_trips_through_parquet(demo, book, tmp_path):
    export = usage_export(UsageQuery(), book)
    written = write(demo, export, "parquet", tmp_path / "all.parquet")
    expected_rows, expected_types = relation(demo, export)
    rows, types = read_back(written.path, "parquet")
    assert written.rows == len(rows) == len(expected_rows) > 10_000
    assert (rows, types) == (expected_rows, expected_types)


def read_xlsx(path: Path) -> list[list]:
    """Cell values of the first sheet: strings, numbers (floats), booleans, blanks as None."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(path) as workbook:
        shared = []
        if "xl/sharedStrings.xml" in workbook.namelist():
            root = ElementTree.fromstring(workbook.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{{{ns['m']}}}t")) for si in root]
        sheet = ElementTree.fromstring(workbook.read("xl/worksheets/sheet1.xml"))
    table = []
    for row in sheet.iter(f"{{{ns['m']}}}row"):
        cells = {}
        for cell in row.findall("m:c", ns):
            column = _column_index(cell.get("r"))
            kind, value = cell.get("t"), cell.find("m:v", ns)
            if kind == "inlineStr":
                cells[column] = "".join(t.text or "" for t in cell.iter(f"{{{ns['m']}}}t"))
            elif kind == "s":
                cells[column] = shared[int(value.text)]
            elif kind == "b":
                cells[column] = value.text == "1"
            elif kind == "str":
                cells[column] = value.text
            else:
                cells[column] = float(value.text)
        width = max(cells) + 1 if cells else 0
        table.append([cells.get(i) for i in range(width)])
    return table


def _column_index(ref: str) -> int:
    letters = "".join(ch for ch in ref if ch.isalpha())
    index = 0
    for ch in letters:
        index = index * 26 + ord(ch) - 64
    return index - 1


def excel_value(value):
    """What a value becomes in a sheet: times as days since 1899-12-30 (UTC), numbers as
    floats, the rest as it is."""
    if isinstance(value, datetime):
        naive = value.astimezone(UTC).replace(tzinfo=None)
        return (naive - datetime(1899, 12, 30)) / timedelta(days=1)
    if isinstance(value, date):
        return float((value - date(1899, 12, 30)).days)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return float(value)


@pytest.mark.parametrize("group_by", SHAPES)
def test_xlsx_reads_back_with_the_same_rows_and_cell_types(small, book, tmp_path, group_by):
    export = usage_export(UsageQuery(group_by=group_by), book)
    written = write(small, export, "xlsx", tmp_path / "usage.xlsx")
    expected_rows, _ = relation(small, export)
    header, *rows = read_xlsx(written.path)
    assert header == [c.name for c in export.query.columns]
    width = len(header)
    rows = [row + [None] * (width - len(row)) for row in rows]
    expected = [[excel_value(v) for v in row] for row in expected_rows]
    assert written.rows == len(rows) == len(expected)
    for got, want in zip(sorted(rows, key=repr), sorted(expected, key=repr), strict=True):
        assert_same_cells(got, want)


def assert_same_cells(got: list, want: list) -> None:
    for a, b in zip(got, want, strict=True):
        if isinstance(b, float) and isinstance(a, float):
            assert a == pytest.approx(b, abs=1e-6)
        else:
            assert a == b


@pytest.fixture(scope="module")
def too_big_for_a_sheet(tmp_path_factory) -> Path:
    """One user with more generations than an XLSX sheet has rows."""
    path = tmp_path_factory.mktemp("xlsx-limit") / "big.duckdb"
    n = XLSX_MAX_ROWS + 1
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with Ledger.open(path, clock=lambda: start + timedelta(days=30)) as ledger:
        ledger.create_account("u_big", plan="pro")
        ledger.grant("u_big", n, kind="topup")
        ledger.apply_usage(
            pd.DataFrame(
                {
                    "user_id": "u_big",
                    "credits": 1,
                    "ts": pd.date_range(start, periods=n, freq="s"),
                    "success": True,
                    "model": "Music 1.5",
                }
            )
        )
    return path


def test_xlsx_refuses_more_rows_than_a_sheet_holds_and_writes_nothing(
    too_big_for_a_sheet, book, tmp_path
):
    with Ledger.open(too_big_for_a_sheet, read_only=True) as ledger:
        export = usage_export(UsageQuery(kinds=["capture"]), book)
        with pytest.raises(
            TooManyRowsForSheet, match="1,048,576 rows but an XLSX sheet holds at most 1,048,575"
        ):
            write(ledger, export, "xlsx", tmp_path / "big.xlsx")
        assert not (tmp_path / "big.xlsx").exists()
        daily = usage_export(UsageQuery(kinds=["capture"], group_by=["day"]), book)
        assert write(ledger, daily, "xlsx", tmp_path / "daily.xlsx").rows == 13  # grouped: fits


def test_partitioned_by_month_is_a_folder_that_reads_back_whole(small, book, tmp_path):
    export = usage_export(UsageQuery(), book)
    written = write(small, export, "parquet", tmp_path / "usage", partition_by_month=True)
    folders = sorted(p.name for p in written.path.iterdir())
    assert folders == ["month=2026-11-01", "month=2026-12-01"]
    expected_rows, _ = relation(small, export)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        glob = str(written.path / "*" / "*.parquet")
        back = con.execute(
            "SELECT * EXCLUDE (month) FROM read_parquet($glob, hive_partitioning = true)",
            {"glob": glob},
        ).fetchall()
        december = con.execute(
            "SELECT count(*) FROM read_parquet($glob, hive_partitioning = true) "
            "WHERE month = DATE '2026-12-01'",
            {"glob": glob},
        ).fetchone()[0]
    assert sorted(back, key=repr) == expected_rows
    assert written.rows == len(expected_rows) and december == 1  # gen-7, 1 December


def test_grouped_by_day_partitions_by_its_month(small, book, tmp_path):
    export = usage_export(UsageQuery(group_by=["day", "model"]), book)
    written = write(small, export, "parquet", tmp_path / "daily", partition_by_month=True)
    assert sorted(p.name for p in written.path.iterdir()) == [
        "month=2026-11-01",
        "month=2026-12-01",
    ]


def test_partitioning_needs_a_month_and_parquet(small, book, tmp_path):
    with pytest.raises(PartitionNeedsMonth, match="Group by none, or by day or month"):
        write(
            small,
            usage_export(UsageQuery(group_by=["model", "week"]), book),
            "parquet",
            tmp_path / "x",
            partition_by_month=True,
        )
    with pytest.raises(PartitionNeedsParquet, match="Use --format parquet"):
        write(
            small, usage_export(UsageQuery(), book), "csv", tmp_path / "y", partition_by_month=True
        )
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_not_overwritten_unless_asked(small, book, tmp_path):
    target = tmp_path / "usage.csv"
    target.write_text("keep me")
    export = usage_export(UsageQuery(group_by=["model"]), book)
    with pytest.raises(OutputExists, match="already exists"):
        write(small, export, "csv", target)
    assert target.read_text() == "keep me"
    assert write(small, export, "csv", target, overwrite=True).rows == 7
    assert target.read_text().startswith("model,events,generations")


def test_unknown_format_names_the_formats(small, book, tmp_path):
    with pytest.raises(UnknownFormat, match="csv, parquet, jsonl, xlsx"):
        write(small, usage_export(UsageQuery(), book), "pdf", tmp_path / "x.pdf")


def test_download_bytes_are_the_file_and_the_ledger_is_untouched(small_db, book, tmp_path):
    before = digest(small_db)
    with Ledger.open(small_db, read_only=True) as ledger:
        export = usage_export(UsageQuery(group_by=["model"]), book)
        data = to_bytes(ledger, export, "csv")
        written = write(ledger, export, "csv", tmp_path / "usage.csv")
        assert data == written.path.read_bytes()
        assert to_bytes(ledger, export, "parquet")[:4] == b"PAR1"
        assert to_bytes(ledger, export, "xlsx")[:2] == b"PK"
    assert digest(small_db) == before
