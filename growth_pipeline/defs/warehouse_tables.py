"""Customer-wide tables derived from all of a customer's raw events: who is who, and what events exist."""

import dagster as dg

from growth_pipeline.defs.partitions import ALL_DAYS_OF_CUSTOMER, customer_partitions
from growth_pipeline.defs.resources import GrowthResource
from growth_pipeline.lib.features.activity import rekey_user_daily
from growth_pipeline.lib.identities.event_catalog import build_event_catalog
from growth_pipeline.lib.identities.stitching import build_identities

GROUP = "ingestion"
RAW_EVENTS_ALL_DAYS = dg.AssetDep("raw_events", partition_mapping=ALL_DAYS_OF_CUSTOMER)


@dg.asset(partitions_def=customer_partitions, group_name=GROUP, deps=[RAW_EVENTS_ALL_DAYS], kinds={"duckdb"})
def identities(context: dg.AssetExecutionContext, growth: GrowthResource) -> dg.MaterializeResult:
    """Every distinct_id and device id of the customer mapped to its canonical user (``core.identities``).

    Follows Mixpanel's simplified ID merge ($device_id + $user_id) and the original API ($identify,
    $create_alias, $merge), so one person's events before and after sign-up count as one user downstream.
    Earlier days of ``core.user_daily`` are moved onto the merged users, so they read as if built today.
    """
    customer_id = context.partition_key
    with growth.warehouse(customer_id) as con:
        stats = build_identities(con)
        moved = rekey_user_daily(con)
    return dg.MaterializeResult(
        metadata={
            "ids": stats["ids"],
            "users": stats["users"],
            "identified_users": stats["identified_users"],
            "ids_merged_into_another": stats["ids_merged"],
            "resolved_by": dg.MetadataValue.json(stats["resolved_by"]),
            "user_daily_ids_moved": moved,
            "dagster/row_count": stats["ids"],
        }
    )


@dg.asset(partitions_def=customer_partitions, group_name=GROUP, deps=[RAW_EVENTS_ALL_DAYS], kinds={"duckdb"})
def event_catalog(context: dg.AssetExecutionContext, growth: GrowthResource) -> dg.MaterializeResult:
    """Each event name of the customer with counts, first and last seen, and its properties with observed
    types and fill rates (``core.event_catalog``, ``core.event_properties``): where modelling starts."""
    customer_id = context.partition_key
    with growth.warehouse(customer_id) as con:
        summary = build_event_catalog(con)
    return dg.MaterializeResult(
        metadata={
            "event_names": summary["event_names"],
            "properties": summary["properties"],
            "events": summary["events"],
            "dagster/row_count": summary["event_names"],
            "catalog": dg.MetadataValue.md(summary["markdown"]),
        }
    )
