"""The classic growth analytics of a customer as of a date: channels, actions per channel, purchases by category
and channel, the most profitable users, lifetime value per channel, weekly cohort retention and campaign lift.
Each is a ``marts`` table built by a file in sql/ and a PNG chart. No Dagster import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import polars as pl

from growth_pipeline.lib.analytics import charts
from growth_pipeline.lib.features.names import json_pointer
from growth_pipeline.lib.warehouse.sql import fetch, fetch_one, read_frame, run_sql, set_variables, table_exists

TABLES = {
    "channels": ["channels", "channel_actions", "category_purchases"],
    "top_users": ["top_users"],
    "channel_ltv": ["channel_ltv"],
    "cohort_retention": ["cohort_retention"],
    "campaign_lift": ["campaign_lift"],
}


@dataclass
class Analysis:
    """One analysis: its marts tables (as of one date) and charts (file name -> PNG bytes)."""

    name: str
    as_of: date
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    charts: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def latest_day(con: duckdb.DuckDBPyConnection) -> date | None:
    return fetch_one(con, "user_daily_latest_day")[0]


def prepare(con: duckdb.DuckDBPyConnection, customer, as_of: date) -> None:
    """The signed-up users as of ``as_of`` (temp table ``analytics_users``) every analysis starts from."""
    run_sql(con, "analytics_users", as_of=as_of, channel_default=customer.events.channel_default)


def _read(con: duckdb.DuckDBPyConnection, table: str, as_of: date) -> pl.DataFrame:
    columns, descending = zip(*ORDER[table], strict=True)
    frame = read_frame(con, "marts_read", qualified_name=f"marts.{table}", as_of=as_of)
    return frame.sort(list(columns), descending=list(descending), nulls_last=True)


def campaigns(con: duckdb.DuckDBPyConnection, customer) -> tuple[list[str], list[str]]:
    """The two campaigns compared: customers.yaml ``analytics.campaign_a`` / ``campaign_b``, by default the two
    channels with the most sign-ups (A the biggest, B the baseline)."""
    a, b = customer.analytics.campaign_a, customer.analytics.campaign_b
    if a and b:
        return list(a), list(b)
    ranked = [r[0] for r in fetch(con, "analytics_channels_ranked")]
    if len(ranked) < 2:
        return list(a or ranked[:1]), list(b or [])
    return list(a or [ranked[0]]), list(b or [c for c in ranked if c not in (a or [ranked[0]])][:1])


def channels(con, customer, as_of: date) -> Analysis:
    """Users, paying users and revenue per channel; each event per channel; purchases by category x channel."""
    out = Analysis("channels", as_of)
    run_sql(con, "marts_channels", as_of=as_of)
    if customer.events.category_property:
        set_variables(
            con,
            category_path=json_pointer(customer.events.category_property),
            conversion_events=customer.events.conversion,
            revenue_path=json_pointer(customer.events.revenue_property) if customer.events.revenue_property else None,
        )
        run_sql(con, "marts_category_purchases", as_of=as_of)
    else:
        out.notes.append("no category property configured (events.category_property): no purchases by category")
    return out


def top_users(con, customer, as_of: date) -> Analysis:
    run_sql(con, "marts_top_users", as_of=as_of, top_n=customer.analytics.top_users)
    return Analysis("top_users", as_of)


def channel_ltv(con, customer, as_of: date) -> Analysis:
    run_sql(con, "marts_channel_ltv", as_of=as_of)
    return Analysis("channel_ltv", as_of)


def cohort_retention(con, customer, as_of: date) -> Analysis:
    run_sql(con, "marts_cohort_retention", as_of=as_of)
    return Analysis("cohort_retention", as_of)


def campaign_lift(con, customer, as_of: date) -> Analysis:
    out = Analysis("campaign_lift", as_of)
    a, b = campaigns(con, customer)
    if not a or not b:
        out.notes.append("fewer than two channels: no campaigns to compare")
        return out
    run_sql(
        con,
        "marts_campaign_lift",
        as_of=as_of,
        campaign_a=a,
        campaign_b=b,
        response_days=customer.analytics.response_days,
    )
    return out


# how each table's rows are shown: (column, descending) in order of precedence, nulls last
ORDER = {
    "channels": [("users", True), ("channel", False)],
    "channel_actions": [("channel", False), ("events", True)],
    "category_purchases": [("category", False), ("channel", False)],
    "top_users": [("rank", False)],
    "channel_ltv": [("ltv", True), ("channel", False)],
    "cohort_retention": [("cohort_week", False), ("week_number", False)],
    "campaign_lift": [("day_since_signup", False)],
}


def read_tables(con, name: str, as_of: date | None = None) -> dict[str, pl.DataFrame]:
    """The marts tables of one analysis as of ``as_of`` (default: the latest as-of date built); missing tables
    are left out."""
    out = {}
    for table in TABLES[name]:
        if not table_exists(con, f"marts.{table}"):
            continue
        day = as_of or fetch_one(con, "marts_latest_as_of", qualified_name=f"marts.{table}")[0]
        if day is not None:
            out[table] = _read(con, table, day)
    return out


def make_charts(name: str, tables: dict[str, pl.DataFrame], customer) -> dict[str, bytes]:
    """The PNG charts of one analysis from its tables (file name -> bytes)."""
    out: dict[str, bytes] = {}
    ch = tables.get("channels")
    if ch is not None and ch.height:
        out["users_by_channel.png"] = charts.bar_chart(
            ch["channel"].to_list(), ch["users"].to_numpy(), "Users by acquisition channel", "signed-up users"
        )
        out["revenue_by_channel.png"] = charts.bar_chart(
            ch["channel"].to_list(), ch["revenue"].to_numpy(), "Revenue by acquisition channel", "revenue"
        )
    actions = tables.get("channel_actions")
    if actions is not None and actions.height:
        top = (
            actions.group_by("event")
            .agg(pl.col("events").sum())
            .sort(["events", "event"], descending=[True, False])
            .head(10)["event"]
            .to_list()
        )
        out["actions_per_user_by_channel.png"] = heatmap(
            actions.filter(pl.col("event").is_in(top)),
            "channel",
            "event",
            "events_per_user",
            "Actions per user, by channel (top events)",
            fmt="{:.1f}",
        )
    cat = tables.get("category_purchases")
    if cat is not None and cat.height:
        out["purchases_by_category_and_channel.png"] = heatmap(
            cat,
            "channel",
            "category",
            "purchases",
            f"Purchases by {customer.events.category_property or 'category'} and channel",
            fmt="{:.0f}",
        )
    top_u = tables.get("top_users")
    if top_u is not None and top_u.height:
        out["top_users.png"] = charts.bar_chart(
            top_u["user_key"].head(20).to_list(),
            top_u["revenue"].head(20).to_numpy(),
            "Most profitable users (revenue to date)",
            "revenue",
        )
    ltv = tables.get("channel_ltv")
    if ltv is not None and ltv.filter(pl.col("ltv").is_not_null()).height:
        shown = ltv.filter(pl.col("ltv").is_not_null())
        out["ltv_by_channel.png"] = charts.bar_chart(
            shown["channel"].to_list(),
            shown["ltv"].to_numpy(),
            "Lifetime value per paying user, by channel",
            "AOV x purchases per month x retention months",
        )
    ret = tables.get("cohort_retention")
    if ret is not None and ret.height:
        recent = ret.filter(
            pl.col("cohort_week").is_in(ret["cohort_week"].unique().sort().tail(20).implode())
            & (pl.col("week_number") <= 16)
        )
        out["cohort_retention.png"] = heatmap(
            recent.with_columns(pl.col("cohort_week").cast(pl.Utf8), (pl.col("retention") * 100).alias("pct")),
            "week_number",
            "cohort_week",
            "pct",
            "Weekly cohort retention (% of sign-up week active)",
            fmt="{:.0f}",
            xlabel="weeks since sign-up",
            ylabel="sign-up week",
        )
    lift = tables.get("campaign_lift")
    if lift is not None and lift.height:
        out["campaign_lift.png"] = campaign_chart(lift, lift["campaign_a"][0], lift["campaign_b"][0])
    return out


ANALYSES = {
    "channels": channels,
    "top_users": top_users,
    "channel_ltv": channel_ltv,
    "cohort_retention": cohort_retention,
    "campaign_lift": campaign_lift,
}


def run_analysis(con, customer, name: str, as_of: date) -> Analysis:
    """Build one analysis as of ``as_of`` (its marts rows for that date are replaced), with its charts."""
    prepare(con, customer, as_of)
    out = ANALYSES[name](con, customer, as_of)
    out.tables = read_tables(con, name, as_of)
    out.charts = make_charts(name, out.tables, customer)
    return out


# ------------------------------------------------------------------------------------------------------ charts


def heatmap(
    frame: pl.DataFrame,
    x: str,
    y: str,
    value: str,
    title: str,
    fmt: str = "{:.2g}",
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> bytes:
    """A grid of ``value`` by ``x`` (columns) and ``y`` (rows), each cell labelled."""
    xs = sorted(frame[x].unique().to_list())
    ys = sorted(frame[y].unique().to_list())
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in frame.select(x, y, value).iter_rows():
        grid[ys.index(r[1]), xs.index(r[0])] = r[2]
    fig = charts._new_figure((max(8.0, 0.6 * len(xs) + 3), max(4.5, 0.35 * len(ys) + 1.5)))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="Blues")
    ax.set_xticks(
        range(len(xs)),
        labels=[str(v) for v in xs],
        rotation=45 if len(xs) > 8 else 0,
        ha="right" if len(xs) > 8 else "center",
        fontsize=8,
    )
    ax.set_yticks(range(len(ys)), labels=[str(v) for v in ys], fontsize=8)
    hi = np.nanmax(grid) if np.isfinite(grid).any() else 1.0
    if len(xs) * len(ys) <= 400:
        for i in range(len(ys)):
            for j in range(len(xs)):
                if np.isfinite(grid[i, j]):
                    ax.text(
                        j,
                        i,
                        fmt.format(grid[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if grid[i, j] > 0.6 * hi else "black",
                    )
    fig.colorbar(im, ax=ax, fraction=0.03)
    ax.set(title=title, xlabel=xlabel or x, ylabel=ylabel or y)
    return charts._render(fig, None)


def campaign_chart(lift: pl.DataFrame, a: str, b: str) -> bytes:
    """Cumulative response rate of both campaigns by day since sign-up (gains), and the lift of A over B."""
    fig = charts._new_figure((10.0, 4.5))
    g, l_ = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    d = lift["day_since_signup"].to_numpy()
    g.plot(d, lift["rate_a"].to_numpy() * 100, color="C0", linewidth=2, label=f"A: {a}")
    g.plot(d, lift["rate_b"].to_numpy() * 100, color="C1", linestyle="--", label=f"B (baseline): {b}")
    g.set(title="Cumulative response (first purchase)", xlabel="days since sign-up", ylabel="% of campaign users")
    g.legend(fontsize=8)
    g.grid(alpha=0.3)
    l_.plot(d, lift["lift"].to_numpy(), color="C0", linewidth=2)
    l_.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    l_.set(title="Lift of A over B", xlabel="days since sign-up", ylabel="rate A / rate B")
    l_.grid(alpha=0.3)
    return charts._render(fig, None)
