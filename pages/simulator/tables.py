"""What both tabs of the balance simulator show the same way: a titled table with its CSV
download, and the upload of a draft price book."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from credits_core.pricing import PriceBook
from pages import shell


def csv_button(label: str, frame: pd.DataFrame, name: str) -> None:
    st.download_button(
        f"Download {label} (CSV)",
        data=lambda: frame.to_csv(index=False),
        file_name=f"{name}.csv",
        mime="text/csv",
        on_click="ignore",
        key=f"csv_{name}",
    )


def show(label: str, frame: pd.DataFrame, name: str, **options) -> None:
    st.markdown(f"**{label}**")
    shell.table(frame, key=name, **options)
    csv_button(label.lower(), frame, name)


def draft_book(key: str) -> PriceBook | None:
    """The uploaded draft price book; None until one is uploaded."""
    upload = st.file_uploader("Draft price book (TOML)", type=["toml"], key=f"{key}_upload")
    if upload is None:
        return None
    return PriceBook.loads(upload.getvalue(), source=upload.name)
