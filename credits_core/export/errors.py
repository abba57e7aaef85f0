"""Errors of the usage export and the read-only SQL console: one class per rule.

Every class derives from `ExportError(CreditsError)`; bad input derives from
`ValueError` as well. Each message says what was wrong and what is valid.
"""

from __future__ import annotations

from collections.abc import Iterable

from credits_core.errors import CreditsError


class ExportError(CreditsError):
    """Root of every export and SQL console error."""


def _listed(values: Iterable[str]) -> str:
    return ", ".join(values)


class UnknownGrouping(ExportError, ValueError):
    def __init__(self, given: str, valid: Iterable[str]) -> None:
        super().__init__(f"Cannot group by {given!r}. Group by none or by: {_listed(valid)}.")


class UnknownEventKind(ExportError, ValueError):
    def __init__(self, given: str, valid: Iterable[str]) -> None:
        super().__init__(f"Unknown event kind {given!r}. Event kinds: {_listed(valid)}.")


class UnknownProvider(ExportError, ValueError):
    def __init__(self, given: str, valid: Iterable[str]) -> None:
        super().__init__(f"Unknown provider {given!r}. Providers: {_listed(valid)}.")


class InvalidTimeRange(ExportError, ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(f"{message} The range is [from, to): from inclusive, to exclusive.")


class UnknownFormat(ExportError, ValueError):
    def __init__(self, given: str, valid: Iterable[str]) -> None:
        super().__init__(f"Unknown export format {given!r}. Formats: {_listed(valid)}.")


class TooManyRowsForSheet(ExportError, ValueError):
    """An XLSX sheet holds 1,048,576 rows, one of them the header."""

    def __init__(self, rows: int, limit: int) -> None:
        self.rows = rows
        self.limit = limit
        super().__init__(
            f"The export has {rows:,} rows but an XLSX sheet holds at most {limit:,} data rows. "
            "Narrow the filters, group the rows (by day, model, ...), or choose CSV, Parquet "
            "or JSON lines, which have no row limit."
        )


class PartitionNeedsMonth(ExportError, ValueError):
    def __init__(self, group_by: Iterable[str]) -> None:
        super().__init__(
            f"A layout partitioned by month needs rows that have a month; grouped by "
            f"{_listed(group_by)} they have none. Group by none, or by day or month as well, "
            "or export a single file."
        )


class PartitionNeedsParquet(ExportError, ValueError):
    def __init__(self, format_: str) -> None:
        super().__init__(
            f"The partitioned layout (a folder of files by month) is written as Parquet, not "
            f"{format_}. Use --format parquet, or drop --partition-by-month."
        )


class OutputExists(ExportError, FileExistsError):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path} already exists. Choose a new file or folder name.")


class SqlRefused(ExportError, ValueError):
    """The console does not run this text (empty, several statements, too long)."""


class SqlFailed(ExportError):
    """DuckDB refused or could not run the statement; the message is DuckDB's."""


class SqlOutOfMemory(ExportError, MemoryError):
    """The statement needed more memory than the console gives one statement."""

    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        super().__init__(
            f"The query needed more than {memory_bytes / 2**20:,.0f} MiB, the console's memory "
            "limit per statement, and was stopped. Aggregate, filter earlier, or select fewer "
            "or shorter columns."
        )


class SqlResultTooLarge(ExportError):
    """The statement's result is larger in bytes than the console returns."""

    def __init__(self, result_bytes: int) -> None:
        self.result_bytes = result_bytes
        super().__init__(
            f"The result is larger than {result_bytes / 2**20:,.0f} MiB, the most the console "
            "returns. Select fewer rows or columns (or shorter text), or use the usage export "
            "to write large results to a file."
        )


class SqlTimeout(ExportError, TimeoutError):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"The query was stopped after {seconds:g} s, the console's time limit. "
            "Filter earlier, aggregate, or add a LIMIT."
        )
