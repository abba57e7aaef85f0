"""Cost calculator: price one request, the catalog with margins, a draft price book."""

import pandas as pd
import streamlit as st

from credits_core.access import Action
from credits_core.errors import CreditsError
from credits_core.ledger import InsufficientCredits
from credits_core.pricing import PriceBook, PriceBookError, PricingError
from credits_core.pricing.book import catalog_diff
from credits_core.pricing.options import format_value
from pages import shell

shell.page("Cost calculator", Action.PRICE)
book = shell.price_book()

st.subheader("Price a request")
left, right = st.columns([1, 1])
with left:
    provider = st.selectbox("Provider", book.providers(), key="provider")
    model = st.selectbox("Model", book.models(provider), key="model")
    name, spec = book.model(model)
    chosen: dict[str, object] = {}
    for option in spec.options:
        values = book.valid_values(name, option, chosen)
        default = spec.default_of(option)
        index = values.index(default) if default in values else 0
        chosen[option] = st.selectbox(
            option.replace("_", " ").capitalize(),
            values,
            index=index,
            format_func=format_value,
            key=f"option_{name}_{option}",
        )
    plan = st.selectbox("Plan", [None, *book.plans()], format_func=lambda p: p or "no plan")

with right:
    try:
        quote = book.quote(name, provider=provider, plan=plan, **chosen)
    except PricingError as error:
        st.error(str(error))
        st.stop()
    a, b = st.columns(2)
    c, d = st.columns(2)
    a.metric("Credits", f"{quote.credits:,}")
    b.metric("USD value", shell.usd(quote.usd_value, 4))
    cost = quote.provider_cost_usd
    c.metric("Provider cost", "unknown" if cost is None else shell.usd(cost, 4))
    margin = quote.margin_usd
    d.metric(
        "Margin",
        "unknown" if margin is None else shell.usd(margin, 4),
        delta=None if quote.margin_pct is None else f"{quote.margin_pct}%",
    )
    if quote.cost_is_estimate:
        st.caption("The provider cost is an estimate: no primary source was found.")
    if quote.derived:
        st.caption("This price is derived by the cost-plus rule, not set by hand.")
    st.dataframe(
        pd.DataFrame([vars(step) for step in quote.breakdown]),
        hide_index=True,
        width="stretch",
    )
    st.caption(f"Price book {quote.price_book_version}")

    st.markdown("**Can this user afford it?**")
    user_id = st.text_input("User id", key="afford_user", placeholder="u_123")
    if user_id.strip():
        try:
            balance = shell.ledger().validate(user_id.strip(), quote.credits)
        except InsufficientCredits as error:
            st.error(str(error))
        except CreditsError as error:
            st.warning(str(error))
        else:
            st.success(f"OK: {balance.available:,} credits available, {quote.credits:,} needed.")

st.subheader("Catalog and margins")
credit_usd = st.number_input(
    "USD value of one credit",
    min_value=0.00001,
    value=float(book.version_at().credit_usd),
    step=0.00005,
    format="%.5f",
)
catalog = book.catalog(credit_usd=credit_usd)
below = int(catalog["below_cost"].sum())
st.caption(f"{len(catalog)} SKUs; {below} sold below the provider's cost at this credit value.")
shell.table(catalog, flag="below_cost")

st.subheader("Compare a draft price book")
upload_tab, edit_tab = st.tabs(["Upload a TOML draft", "Edit prices in a table"])
with upload_tab:
    upload = st.file_uploader("Draft price book", type=["toml"])
    if upload is not None:
        try:
            draft = PriceBook.loads(upload.getvalue(), source=upload.name)
        except (PriceBookError, UnicodeDecodeError) as error:
            st.error(str(error))
        else:
            changes = book.diff(draft)
            st.caption(f"{len(changes)} SKUs change.")
            st.dataframe(changes, hide_index=True, width="stretch")
with edit_tab:
    current = book.catalog()[["model", "options", "credits"]]
    edited = st.data_editor(
        current, disabled=["model", "options"], hide_index=True, key="draft_editor"
    )
    changes = catalog_diff(current, edited)
    st.caption(f"{len(changes)} SKUs change.")
    st.dataframe(changes, hide_index=True, width="stretch")
