"""Home page of the credits back office (for now: the price catalog)."""

import streamlit as st

from pages import shell

shell.page("Credits back office")
book = shell.price_book()
version = book.version_at()
st.caption(f"Price book {version.version}, in force since {version.effective_from:%Y-%m-%d}")
st.subheader("Price catalog")
st.dataframe(book.catalog(), hide_index=True, width="stretch")
