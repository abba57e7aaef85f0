"""Home page of the credits back office (for now: the price catalog)."""

import streamlit as st

from credits_core.pricing import PriceBook

st.set_page_config(page_title="Credits back office", layout="wide")
st.title("Credits back office")


@st.cache_resource
def price_book() -> PriceBook:
    return PriceBook.load()


book = price_book()
version = book.version_at()
st.caption(f"Price book {version.version}, in force since {version.effective_from:%Y-%m-%d}")
st.subheader("Price catalog")
st.dataframe(book.catalog(), hide_index=True, width="stretch")
