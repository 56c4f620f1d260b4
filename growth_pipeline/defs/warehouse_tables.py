"""Customer-wide tables derived from all of a customer's raw events: who is who, and what events exist."""

import dagster as dg

from growth_pipeline.defs.partitions import ALL_DAYS_OF_CUSTOMER, customer_partitions
from growth_pipeline.defs.resources import GrowthResource
from growth_pipeline.lib.identities.steps import catalog_events, resolve_identities

GROUP = "ingestion"
RAW_EVENTS_ALL_DAYS = dg.AssetDep("raw_events", partition_mapping=ALL_DAYS_OF_CUSTOMER)


@dg.asset(partitions_def=customer_partitions, group_name=GROUP, deps=[RAW_EVENTS_ALL_DAYS], kinds={"duckdb"})
def identities(context: dg.AssetExecutionContext, growth: GrowthResource) -> dg.MaterializeResult:
    """Every distinct_id and device id of the customer mapped to its canonical user (``core.identities``).

    Follows Mixpanel's simplified ID merge ($device_id + $user_id) and the original API ($identify,
    $create_alias, $merge), so one person's events before and after sign-up count as one user downstream.
    Earlier days of ``core.user_daily`` are moved onto the merged users, so they read as if built today.
    """
    with growth.warehouse(context.partition_key) as con:
        built = resolve_identities(con)
    return dg.MaterializeResult(
        metadata={
            "ids": built.ids,
            "users": built.users,
            "identified_users": built.identified_users,
            "ids_merged_into_another": built.ids_merged,
            "resolved_by": dg.MetadataValue.json(built.resolved_by),
            "user_daily_ids_moved": built.user_daily_ids_moved,
            "dagster/row_count": built.ids,
        }
    )


@dg.asset(partitions_def=customer_partitions, group_name=GROUP, deps=[RAW_EVENTS_ALL_DAYS], kinds={"duckdb"})
def event_catalog(context: dg.AssetExecutionContext, growth: GrowthResource) -> dg.MaterializeResult:
    """Each event name of the customer with counts, first and last seen, and its properties with observed
    types and fill rates (``core.event_catalog``, ``core.event_properties``): where modelling starts."""
    with growth.warehouse(context.partition_key) as con:
        catalog = catalog_events(con)
    return dg.MaterializeResult(
        metadata={
            "event_names": catalog.event_names,
            "properties": catalog.properties,
            "events": catalog.events,
            "dagster/row_count": catalog.event_names,
            "catalog": dg.MetadataValue.md(catalog.markdown),
        }
    )
