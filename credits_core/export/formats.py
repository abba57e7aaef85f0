"""Writing an export to a file: CSV, Parquet and JSON lines straight from DuckDB
(`COPY (SELECT ...) TO file`, no pandas in between), XLSX through xlsxwriter, and a
folder of Parquet files partitioned by month.

Everything runs in one read snapshot of the ledger; nothing is written to it.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import xlsxwriter

from credits_core.export.errors import (
    OutputExists,
    PartitionNeedsMonth,
    PartitionNeedsParquet,
    TooManyRowsForSheet,
    UnknownFormat,
)
from credits_core.export.relation import MONTH_SQL
from credits_core.export.run import Export, read_snapshot
from credits_core.ledger import Ledger

# Parquet in snappy, the codec most readers default to: the fastest DuckDB writes (zstd
# level 1 made files 25% smaller and the export 6-10% slower, see bench/bench_export.py)
PARQUET = "FORMAT parquet, COMPRESSION snappy"
# The one text column of event rows that is not an ENUM is the unique transaction id: a
# dictionary of it would be built only to be given up.
NO_TEXT_DICTIONARY = "STRING_DICTIONARY_PAGE_SIZE_LIMIT 1"
# format -> DuckDB COPY options (None: written by xlsxwriter)
COPY_OPTIONS = {
    "csv": "(FORMAT csv, HEADER true)",
    "parquet": f"({PARQUET})",
    "jsonl": "(FORMAT json)",
    "xlsx": None,
}
FORMATS = tuple(COPY_OPTIONS)
FORMAT_ALIASES = {"json": "jsonl", "ndjson": "jsonl", "excel": "xlsx"}
EXTENSIONS = {"csv": "csv", "parquet": "parquet", "jsonl": "jsonl", "xlsx": "xlsx"}
MIME_TYPES = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
XLSX_MAX_ROWS = 1_048_575  # a sheet's 1,048,576 rows less the header
XLSX_BATCH = 10_000


@dataclass(frozen=True)
class Written:
    """What an export wrote: the file (or folder), its format and its data rows."""

    path: Path
    format: str
    rows: int


def format_name(name: str) -> str:
    """The canonical format name ("json" is JSON lines); raises UnknownFormat."""
    canonical = FORMAT_ALIASES.get(name.strip().lower(), name.strip().lower())
    if canonical not in COPY_OPTIONS:
        raise UnknownFormat(name, FORMATS)
    return canonical


def write(
    ledger: Ledger,
    export: Export,
    format_: str,
    path: str | Path,
    *,
    partition_by_month: bool = False,
    overwrite: bool = False,
) -> Written:
    """Write the export to `path` (a folder when partitioned by month)."""
    format_ = format_name(format_)
    path = Path(path)
    if partition_by_month and format_ != "parquet":
        raise PartitionNeedsParquet(format_)
    if partition_by_month and not export.query.has_month:
        raise PartitionNeedsMonth(export.query.group_by)
    if path.exists() and not overwrite:
        raise OutputExists(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)

    def work(cur: duckdb.DuckDBPyConnection) -> int:
        export.prepare(cur)
        if format_ == "xlsx":
            return _write_xlsx(cur, export, path)
        if partition_by_month:
            return _copy_partitioned(cur, export, path, overwrite)
        options = f"({_parquet_options(export)})" if format_ == "parquet" else COPY_OPTIONS[format_]
        return _copy(cur, export, path, options)

    return Written(path, format_, read_snapshot(ledger, work))


def to_bytes(ledger: Ledger, export: Export, format_: str) -> bytes:
    """The export as the bytes of one file (for a download)."""
    folder = Path(tempfile.mkdtemp(prefix="credits-export-"))
    try:
        written = write(ledger, export, format_, folder / f"export.{EXTENSIONS[format_]}")
        return written.path.read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _copy(cur: duckdb.DuckDBPyConnection, export: Export, path: Path, options: str) -> int:
    sql, params = export.file_sql()
    (rows,) = cur.execute(
        f"COPY ({sql}) TO $path {options}", {**params, "path": str(path)}
    ).fetchone()
    return int(rows)


def _copy_partitioned(
    cur: duckdb.DuckDBPyConnection, export: Export, folder: Path, overwrite: bool
) -> int:
    sql, params = export.file_sql()
    keys = export.query.key_columns
    if "month" in keys:
        select = f"SELECT * FROM ({sql})"
    elif "day" in keys:
        select = f"SELECT *, date_trunc('month', day)::DATE AS month FROM ({sql})"
    else:
        select = f"SELECT *, {MONTH_SQL} FROM ({sql})"
    options = f"{_parquet_options(export)}, PARTITION_BY (month)"
    if overwrite:
        options += ", OVERWRITE true"
    (rows,) = cur.execute(
        f"COPY ({select}) TO $path ({options})", {**params, "path": str(folder)}
    ).fetchone()
    return int(rows)


def _parquet_options(export: Export) -> str:
    return PARQUET if export.query.group_by else f"{PARQUET}, {NO_TEXT_DICTIONARY}"


def _write_xlsx(cur: duckdb.DuckDBPyConnection, export: Export, path: Path) -> int:
    rows = export.count(cur)
    if rows > XLSX_MAX_ROWS:
        raise TooManyRowsForSheet(rows, XLSX_MAX_ROWS)
    sql, params = export.sql()
    cur.execute(sql, params)
    names = [column[0] for column in cur.description]
    workbook = xlsxwriter.Workbook(
        str(path), {"constant_memory": True, "remove_timezone": True, "strings_to_numbers": False}
    )
    try:
        sheet = workbook.add_worksheet("usage")
        header = workbook.add_format({"bold": True})
        formats = _cell_formats(workbook, export)
        sheet.write_row(0, 0, names, header)
        row = 1
        while batch := cur.fetchmany(XLSX_BATCH):
            for values in batch:
                for col, value in enumerate(values):
                    if value is not None:
                        sheet.write(row, col, value, formats[col])
                row += 1
    finally:
        workbook.close()
    return row - 1


def _cell_formats(workbook: xlsxwriter.Workbook, export: Export) -> list:
    """A number format per column: dates and times readable, the rest as they are."""
    moment = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    day = workbook.add_format({"num_format": "yyyy-mm-dd"})
    by_type = {"TIMESTAMP WITH TIME ZONE": moment, "DATE": day}
    return [by_type.get(column.type) for column in export.query.columns]
