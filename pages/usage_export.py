"""Usage export: filters, a preview with the row count, downloads in each format, and
the read-only SQL console for analysts."""

from datetime import datetime, timedelta

import streamlit as st

from credits_core import export
from credits_core.access import Action
from credits_core.errors import CreditsError
from credits_core.export.formats import EXTENSIONS, XLSX_MAX_ROWS
from credits_core.export.sql_console import Snapshots
from credits_core.ledger import Ledger
from pages import shell

FORMAT_LABELS = {"csv": "CSV", "parquet": "Parquet", "jsonl": "JSON lines", "xlsx": "XLSX"}
PREVIEW_TTL = timedelta(minutes=1)
PREVIEW_ROWS = 100


@st.cache_data(ttl=PREVIEW_TTL, max_entries=64, show_spinner="Counting the export's rows...")
def counted_preview(
    path: str, query: export.UsageQuery, _ledger: Ledger
) -> tuple[export.Preview, datetime]:
    """The export's first rows and row count, and when they were counted: counted again
    when a filter changes or after PREVIEW_TTL, not on every rerun of the page."""
    usage = export.usage_export(query, shell.price_book())
    return export.preview(_ledger, usage, limit=PREVIEW_ROWS), _ledger.now()


identity = shell.page("Usage export", Action.EXPORT)
ledger = shell.ledger()
book = shell.price_book()

today = ledger.now().date()
dates, kinds, group_by = st.columns([2, 2, 2])
picked = dates.date_input(
    "Between (UTC days, both included)",
    value=(today - timedelta(days=30), today),
    key="export_dates",
) or (today,)
since, until = (*picked, *picked)[:2]  # while only the first day is picked: that day
event_kinds = kinds.multiselect(
    "Event kinds", list(export.EVENT_KINDS), default=["capture", "release", "expiry"]
)
grouping = group_by.multiselect("Group by (none: one row per event)", list(export.GROUPINGS))
providers_col, models_col, plans_col, users_col = st.columns(4)
providers = providers_col.multiselect("Providers", book.providers())
models = models_col.multiselect("Models", book.models(provider=None))
plans = plans_col.multiselect("Plans", book.plans())
users = users_col.text_input("Users (comma-separated ids)")

try:
    query = export.UsageQuery(
        since=since,
        until=until + timedelta(days=1),
        users=users,
        models=models,
        providers=providers,
        plans=plans,
        kinds=event_kinds,
        group_by=grouping,
    )
    usage = export.usage_export(query, book)
    shown, counted_at = counted_preview(shell.database_path(), query, ledger)
except CreditsError as error:
    st.error(str(error))
    st.stop()

st.metric("Rows in the export", f"{shown.total_rows:,}")
st.caption(
    f"First {PREVIEW_ROWS} rows, counted at {counted_at:%H:%M:%S} UTC (counted again after "
    f"{PREVIEW_TTL.seconds} s or when a filter changes). Column meanings: the README's data "
    "dictionary (Usage export)."
)
shell.table(shown.rows, key="export_preview")

stem = query.file_stem()
for column, format_ in zip(st.columns(len(export.FORMATS)), export.FORMATS, strict=True):
    if format_ == "xlsx" and shown.total_rows > XLSX_MAX_ROWS:
        column.warning(str(export.TooManyRowsForSheet(shown.total_rows, XLSX_MAX_ROWS)))
        continue
    column.download_button(
        f"Download {FORMAT_LABELS[format_]}",
        data=lambda format_=format_: export.to_bytes(ledger, usage, format_),
        file_name=f"{stem}.{EXTENSIONS[format_]}",
        mime=export.MIME_TYPES[format_],
        on_click="ignore",
        key=f"download_{format_}",
    )

if not identity.can(Action.QUERY_SQL):
    st.stop()


@st.cache_resource(on_release=Snapshots.close)
def sql_snapshots(path: str) -> Snapshots:
    """The SQL box's snapshot of this ledger, shared by every session of the server."""
    return Snapshots()


def _use_example() -> None:
    st.session_state.sql = export.EXAMPLES[st.session_state.example].strip()


st.subheader("SQL (read-only)")
snapshots = sql_snapshots(shell.database_path())
info, refresh = st.columns([4, 1])
if refresh.button("Refresh data"):
    with st.spinner("Taking a fresh snapshot of the ledger..."):
        snapshots.refresh(ledger, book)
taken = snapshots.current
info.caption(
    (f"Data as of {taken.taken_at:%Y-%m-%d %H:%M:%S} UTC (a snapshot). " if taken else
     "The first run takes a snapshot of the ledger; later runs reuse it. ")
    + "Tables: usage (the export's rows, every event), accounts, grants, holds, journal, "
    "price_catalog. One statement per run; nothing can be changed or read outside them."
)  # fmt: skip
st.selectbox(
    "Saved example queries", list(export.EXAMPLES), index=None, key="example",
    on_change=_use_example, placeholder="Pick an example to load it",
)  # fmt: skip
sql = st.text_area("SQL", key="sql", height=180, placeholder="SELECT * FROM usage LIMIT 10")
limit_col, run_col = st.columns([1, 4])
row_limit = limit_col.number_input("Row limit", min_value=1, max_value=10_000, value=1_000)
if run_col.button("Run", type="primary"):
    try:
        with st.spinner("Running..."):
            console = snapshots.get(ledger, book)
            result = console.run(sql, row_limit=int(row_limit))
    except CreditsError as error:
        st.error(str(error))
    else:
        st.caption(f"Data as of {console.taken_at:%Y-%m-%d %H:%M:%S} UTC.")
        if not result.returned_rows:
            st.info("The statement ran and returned no rows.")
        else:
            more = f" (more than {int(row_limit):,}: the rest is cut)" if result.truncated else ""
            st.caption(f"{len(result.rows):,} row(s) in {result.seconds:.2f} s{more}.")
            shell.table(result.rows, key="sql_result")
