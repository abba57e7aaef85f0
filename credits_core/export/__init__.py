"""Usage export and read-only SQL for analysts.

- query.py: `UsageQuery` (filters, group-by) -> one parameterised SQL relation over the
  ledger's tables, with the price book's provider, modality and costs joined in;
- formats.py: that relation to CSV, Parquet or JSON lines by DuckDB's `COPY ... TO`, to
  XLSX (at most one sheet of rows), or to Parquet files partitioned by month;
- sql_console.py: analysts' own SQL over a read-only snapshot of the ledger, run by
  sql_sandbox.py in a child process with no file access and memory, CPU, time, row and
  result-size limits;
- columns.py: the data dictionary of every export shape.

Nothing here writes to the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from credits_core.export.columns import EVENT_COLUMNS, KEY_COLUMNS, MEASURE_COLUMNS, Column
from credits_core.export.errors import (
    ExportError,
    InvalidTimeRange,
    OutputExists,
    PartitionNeedsMonth,
    PartitionNeedsParquet,
    SqlFailed,
    SqlOutOfMemory,
    SqlRefused,
    SqlResultTooLarge,
    SqlTimeout,
    TooManyRowsForSheet,
    UnknownEventKind,
    UnknownFormat,
    UnknownGrouping,
    UnknownProvider,
)
from credits_core.export.formats import FORMATS, MIME_TYPES, Written, to_bytes, write
from credits_core.export.query import EVENT_KINDS, GROUPINGS, Export, UsageQuery, read_snapshot
from credits_core.export.sql_console import EXAMPLES, SqlConsole, SqlResult
from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook


@dataclass(frozen=True)
class Preview:
    """The first rows of an export and how many rows it has in all."""

    rows: pd.DataFrame
    total_rows: int


def preview(ledger: Ledger, export: Export, limit: int = 100) -> Preview:
    """The first `limit` rows and the total row count, from one read snapshot."""

    def work(cur) -> Preview:
        export.prepare(cur)
        return Preview(export.head(cur, limit), export.count(cur))

    return read_snapshot(ledger, work)


def usage_export(query: UsageQuery, book: PriceBook | None = None) -> Export:
    return Export(query, book or PriceBook.load())


__all__ = [
    "EVENT_COLUMNS",
    "EVENT_KINDS",
    "EXAMPLES",
    "FORMATS",
    "GROUPINGS",
    "KEY_COLUMNS",
    "MEASURE_COLUMNS",
    "MIME_TYPES",
    "Column",
    "Export",
    "ExportError",
    "InvalidTimeRange",
    "OutputExists",
    "PartitionNeedsMonth",
    "PartitionNeedsParquet",
    "Preview",
    "SqlConsole",
    "SqlFailed",
    "SqlOutOfMemory",
    "SqlRefused",
    "SqlResult",
    "SqlResultTooLarge",
    "SqlTimeout",
    "TooManyRowsForSheet",
    "UnknownEventKind",
    "UnknownFormat",
    "UnknownGrouping",
    "UnknownProvider",
    "UsageQuery",
    "Written",
    "preview",
    "to_bytes",
    "usage_export",
    "write",
]
