"""Cost calculator: price one request, the catalog with margins, a draft price book."""

import pandas as pd
import streamlit as st

from credits_core.access import Action
from credits_core.affordability import can_afford
from credits_core.errors import CreditsError
from credits_core.pricing import PriceBook, PriceBookError, PricingError
from credits_core.pricing.book import catalog_diff
from credits_core.pricing.options import format_value
from pages import shell
from pages.shell import columns

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
        key = f"option_{name}_{option}"
        previous = st.session_state.get(key)
        values = book.valid_values(name, option, chosen)
        default = spec.default_of(option)
        index = values.index(default) if default in values else 0
        chosen[option] = st.selectbox(
            option.replace("_", " ").capitalize(),
            values,
            index=index,
            format_func=format_value,
            key=key,
        )
        if why := book.option_change(name, option, previous, chosen):
            st.caption(
                f":orange[Changed from {format_value(previous)} to "
                f"{format_value(chosen[option])}: {why}]"
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
    st.caption(f"Price book {quote.price_book_version}")

    st.markdown("**Can this user afford it?** (priced for the user's own plan)")
    user_id = st.text_input("User id", key="afford_user", placeholder="u_123").strip()
    if user_id:
        try:
            answer = can_afford(shell.ledger(), book, user_id, name, provider=provider, **chosen)
        except CreditsError as error:
            st.warning(str(error))
        else:
            (st.success if answer.ok else st.error)(answer.message)
            plan_used = f"the {answer.plan} plan" if answer.plan else "no plan (list price)"
            st.caption(
                f"Priced at {answer.credits:,} credits for {plan_used}, the plan {user_id} is "
                "on, whatever plan is picked above."
            )

st.markdown("**How the price is made**")
shell.table(
    pd.DataFrame([vars(step) for step in quote.breakdown]),
    key="breakdown",
    config={
        "rule": st.column_config.TextColumn("Step", width=140),
        "detail": st.column_config.TextColumn("Detail", width="large"),
        "credits": st.column_config.NumberColumn("Credits", format="%,d", width=90),
    },
)

st.subheader("Catalog and margins")
credit_usd = st.number_input(
    "USD value of one credit",
    min_value=0.00001,
    value=float(book.version_at().credit_usd),
    step=0.00005,
    format="%.5f",
)
catalog = book.margins_by_plan(credit_usd=credit_usd)
below = int(catalog["below_cost"].sum())
st.caption(
    f"{len(catalog)} SKUs; {below} sold below the provider's cost at this credit value on "
    "the list price or on some plan (tinted; see 'Below cost on')."
)
# plans that pay other prices than the list price (the rest pay the list price)
plans = [p for p in book.plans() if (catalog[f"credits_{p}"] != catalog["credits"]).any()]
at_list = [p for p in book.plans() if p not in plans]
if at_list:
    st.caption(f"Plans {', '.join(at_list)} pay the list price; their margins are the list's.")
shell.table(
    catalog,
    key="catalog",
    flag="below_cost",
    main=["model", "options", "credits", "provider_cost_usd", "margin_pct",
          *[f"margin_pct_{plan}" for plan in plans], "below_cost_on"],
    config={
        "margin_pct": st.column_config.NumberColumn("Margin % (list)", format=columns.PERCENT),
        "options": st.column_config.TextColumn("Options", width="medium"),
        **{f"margin_pct_{plan}": st.column_config.NumberColumn(
            f"Margin % {plan}", format=columns.PERCENT) for plan in plans},
        **{f"credits_{plan}": st.column_config.NumberColumn(
            f"Credits {plan}", format=columns.INTEGER) for plan in plans},
    },
)  # fmt: skip

st.subheader("Compare a draft price book")
upload_tab, edit_tab = st.tabs(["Upload a TOML draft", "Edit prices in a table"])
with upload_tab:
    upload = st.file_uploader("Draft price book", type=["toml"])
    if upload is not None:
        try:
            draft = PriceBook.loads(upload.getvalue(), source=upload.name)
        except PriceBookError as error:
            st.error(
                f"Draft not loaded: fix these {len(error.problems)} problem(s) in "
                f"{upload.name} and upload it again:\n"
                + "\n".join(f"- `{key}`: {reason}" for key, reason in error.problems)
            )
        else:
            changes = book.diff(draft)
            st.caption(f"{len(changes)} SKUs change.")
            shell.table(changes, key="draft_changes")
with edit_tab:
    current = book.catalog()[["model", "options", "credits"]]
    edited = st.data_editor(
        current,
        disabled=["model", "options"],
        hide_index=True,
        key="draft_editor",
        width="stretch",
        column_config=columns.configure(current)
        | {"credits": st.column_config.NumberColumn("Credits", min_value=1, format="%,d")},
    )
    changes = catalog_diff(current, edited)
    st.caption(f"{len(changes)} SKUs change.")
    shell.table(changes, key="edited_changes")
