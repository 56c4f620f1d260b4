"""Features: daily activity per canonical user, and the point-in-time feature frame the models start from."""

import dagster as dg

from growth_pipeline.defs.partitions import (
    ALL_DAYS_OF_CUSTOMER,
    BACKFILL_IN_ONE_RUN,
    customer_day_partitions,
    customer_days,
    customer_partitions,
    group_by_customer,
)
from growth_pipeline.defs.resources import GrowthResource
from growth_pipeline.lib.features.steps import build_daily_activity, build_user_features

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
    built = build_daily_activity(growth.warehouses, growth.registry(), group_by_customer(customer_days(context)))
    meta = {
        "days": len(built.days),
        "user_days": built.total("users"),
        "dagster/row_count": built.total("users"),
        "events": built.total("events"),
        "sessions": built.total("sessions"),
        "revenue": round(built.total("revenue"), 2),
        "signups": built.total("signups"),
    }
    if len(built.days) > 1:
        meta["per_day"] = dg.MetadataValue.md(built.per_day_markdown())
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
    built = build_user_features(growth.warehouses, growth.customer(context.partition_key))
    return dg.MaterializeResult(
        metadata={
            "as_of": str(built.as_of),
            "users": built.users,
            "dagster/row_count": built.users,
            "identified_users": built.identified_users,
            "features": len(built.features),
            "categorical_features": ", ".join(built.categorical),
            "top_events": ", ".join(built.top_events),
            "customer_properties": ", ".join(built.customer_properties) or "(none filled)",
            "feature_table": dg.MetadataValue.md(built.feature_table()),
        }
    )
