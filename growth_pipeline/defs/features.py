"""Features: daily activity per canonical user, and the point-in-time feature frame the models start from."""

import dagster as dg
import polars as pl

from growth_pipeline.defs.partitions import (
    ALL_DAYS_OF_CUSTOMER,
    BACKFILL_IN_ONE_RUN,
    customer_day_partitions,
    customer_days,
    customer_partitions,
    group_by_customer,
)
from growth_pipeline.defs.resources import GrowthResource
from growth_pipeline.lib.features.activity import build_user_daily
from growth_pipeline.lib.features.user_features import build_features, feature_columns, read_customer_activity
from growth_pipeline.lib.warehouse.sql import run_sql

GROUP = "features"


@dg.asset(
    partitions_def=customer_day_partitions,
    backfill_policy=BACKFILL_IN_ONE_RUN,
    group_name=GROUP,
    deps=["raw_events", dg.AssetDep("identities", partition_mapping=ALL_DAYS_OF_CUSTOMER)],
    kinds={"duckdb"},
)
def user_daily(context: dg.AssetExecutionContext, growth: GrowthResource) -> dg.MaterializeResult:
    """Per canonical user and day (``core.user_daily``): activity events, sessions (30-minute gap), revenue,
    purchases, goal and churn events, sign-ups, and the first-seen facts observed that day (acquisition
    channel from the customer's property chain, platform, country, city); per event counts in
    ``core.user_daily_events``. Built by sql/user_daily_replace.sql; a day is replaced in one transaction."""
    registry = growth.registry()
    rows = []
    for customer_id, days in group_by_customer(customer_days(context)).items():
        customer = registry.get(customer_id)
        with growth.warehouse(customer_id) as con:
            for day in days:
                a = build_user_daily(con, customer, day)
                rows.append((customer_id, a))
    users = sum(a.users for _, a in rows)
    meta = {
        "days": len(rows),
        "user_days": users,
        "dagster/row_count": users,
        "events": sum(a.events for _, a in rows),
        "sessions": sum(a.sessions for _, a in rows),
        "revenue": round(sum(a.revenue for _, a in rows), 2),
        "signups": sum(a.signups for _, a in rows),
    }
    if len(rows) > 1:
        meta["per_day"] = dg.MetadataValue.md(
            "| customer | day | users | events | revenue |\n|---|---|---:|---:|---:|\n"
            + "\n".join(f"| {c} | {a.day} | {a.users:,} | {a.events:,} | {a.revenue:,.2f} |" for c, a in rows)
        )
    return dg.MaterializeResult(metadata=meta)


@dg.asset(
    partitions_def=customer_partitions,
    group_name=GROUP,
    kinds={"polars", "duckdb"},
    deps=[dg.AssetDep(user_daily, partition_mapping=ALL_DAYS_OF_CUSTOMER), "event_catalog"],
)
def user_features(context: dg.AssetExecutionContext, growth: GrowthResource) -> dg.MaterializeResult:
    """One row per user as of the customer's latest day (``features.user_features``), built in Polars from data
    on or before that day only: recency; events, sessions, active days, revenue and purchases over 1, 7, 28
    and 90 days; the 7-day trend against the 21 days before (overall and for the most frequent events); days
    since sign-up and activity per day of tenure; the mix of the top events; channel, platform, country, city;
    the customer's own properties that the event catalogue shows filled; the favourite category (when the
    customer names a category property). The models build the same frame for each of their as-of dates."""
    customer = growth.customer(context.partition_key)
    with growth.warehouse(customer.id, read_only=True) as con:
        act = read_customer_activity(con, customer)
    frame = build_features(act, act.last_day)
    feats, cats = feature_columns(frame)
    with growth.warehouse(customer.id) as con:
        con.register("frame", frame.to_arrow())
        run_sql(con, "user_features_replace")
        con.unregister("frame")
    nulls = frame.select([pl.col(c).null_count() / max(frame.height, 1) for c in feats]).row(0)
    table = "\n".join(
        f"| {f} | {'categorical' if f in cats else 'numeric'} | {n:.0%} |" for f, n in zip(feats, nulls, strict=False)
    )
    return dg.MaterializeResult(
        metadata={
            "as_of": str(act.last_day),
            "users": frame.height,
            "dagster/row_count": frame.height,
            "identified_users": int(frame["identified"].sum()),
            "features": len(feats),
            "categorical_features": ", ".join(cats),
            "top_events": ", ".join(act.top_events),
            "customer_properties": ", ".join(act.custom_props) or "(none filled)",
            "feature_table": dg.MetadataValue.md("| feature | type | null share |\n|---|---|---:|\n" + table),
        }
    )
