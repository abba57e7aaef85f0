"""Running a usage export: the request bound to a price book (`Export`, which checks
its providers against the book), its relation prepared and read on a cursor of the
ledger's own connection in one read snapshot: the first rows and the row count
(`preview`). Writing files is formats.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import duckdb
import pandas as pd

from credits_core.export import relation
from credits_core.export.errors import UnknownProvider
from credits_core.export.request import UsageQuery
from credits_core.ledger import Ledger
from credits_core.pricing import PriceBook

T = TypeVar("T")


def read_snapshot(ledger: Ledger, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Run `work` on a cursor of the ledger's own connection, in one read snapshot (the
    dashboard holds the file read-write, so no other connection could open it)."""
    return ledger.snapshot(work)


@dataclass(frozen=True)
class Export:
    """A UsageQuery bound to a price book: its SQL, ready to run on a ledger cursor."""

    query: UsageQuery
    book: PriceBook = field(repr=False)

    def __post_init__(self) -> None:
        """Providers are checked against the price book, ignoring case."""
        known = {p.casefold(): p for v in self.book.versions for p in v.providers}
        providers = []
        for name in self.query.providers:
            if name.casefold() not in known:
                raise UnknownProvider(name, sorted(set(known.values())))
            providers.append(known[name.casefold()])
        object.__setattr__(self, "query", replace(self.query, providers=tuple(providers)))

    @property
    def credit_usd(self) -> float:
        return float(self.book.versions[-1].credit_usd)

    def sql(self) -> tuple[str, dict[str, object]]:
        """The relation with the data dictionary's column types."""
        return relation.relation_sql(self.query, self.credit_usd)

    def file_sql(self) -> tuple[str, dict[str, object]]:
        """The relation for `COPY ... TO`: the same rows and values, text key columns as
        ENUM codes (CSV, JSON and Parquet write them as the same strings)."""
        return relation.coded_sql(self.query, self.credit_usd)

    def prepare(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Make the temporary types and lookups the relation joins, on this cursor only
        (they go with it). Run it in the snapshot the relation is read in."""
        relation.prepare(cur, self.book)

    def count(self, cur: duckdb.DuckDBPyConnection) -> int:
        sql, params = self.file_sql()
        (rows,) = cur.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()
        return int(rows)

    def head(self, cur: duckdb.DuckDBPyConnection, limit: int) -> pd.DataFrame:
        """The first rows: events newest first, groups in key order."""
        sql, params = self.sql()
        order = "" if self.query.group_by else "ORDER BY ts DESC, transaction_id"
        return cur.execute(
            f"SELECT * FROM ({sql}) {order} LIMIT $limit", {**params, "limit": limit}
        ).df()


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
    """The export `query` asks for, priced by `book` (the shipped price book by default)."""
    return Export(query, book or PriceBook.load())
