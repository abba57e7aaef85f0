"""Usage export and read-only SQL for analysts.

- request.py: `UsageQuery`, the analyst's request (filters, group-by), checked;
- relation.py: that request as one parameterised SQL relation over the ledger's read
  surface, with the price book's provider, modality and costs joined in;
- run.py: `Export` (the request bound to a price book), prepared and read in one read
  snapshot: `preview`, the first rows and the row count;
- formats.py: that relation to CSV, Parquet or JSON lines by DuckDB's `COPY ... TO`, to
  XLSX (at most one sheet of rows), or to Parquet files partitioned by month;
- sql_console.py: analysts' own SQL over a read-only snapshot of the ledger, run by
  sql_sandbox.py in a child process with no file access and memory, CPU, time, row and
  result-size limits;
- columns.py: the data dictionary of every export shape.

Nothing here writes to the ledger.
"""

from __future__ import annotations

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
from credits_core.export.request import EVENT_KINDS, GROUPINGS, UsageQuery
from credits_core.export.run import Export, Preview, preview, usage_export
from credits_core.export.sql_console import EXAMPLES, SqlConsole, SqlResult

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
