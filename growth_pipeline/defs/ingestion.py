"""Ingestion: a customer's Mixpanel export for one day, landed and loaded into its DuckDB warehouse.

Both assets accept a single (customer, day) partition or a range of them in one run (backfills), looping
over the days in order; the metadata then sums the range and lists each day.
"""

import dagster as dg

from growth_pipeline.defs.partitions import (
    BACKFILL_IN_ONE_RUN,
    customer_day_partitions,
    customer_days,
    group_by_customer,
)
from growth_pipeline.defs.resources import GrowthResource, MixpanelExportResource
from growth_pipeline.lib.ingest import raw_checks
from growth_pipeline.lib.ingest.steps import land_exports, load_raw_events

GROUP = "ingestion"

RAW_EVENTS_CHECKS = [
    dg.AssetCheckSpec(
        "no_duplicate_keys",
        asset="raw_events",
        blocking=True,
        description="No two rows of the day share (event, distinct_id, time, $insert_id).",
    ),
    dg.AssetCheckSpec(
        "no_null_keys",
        asset="raw_events",
        blocking=True,
        description="event, distinct_id and time are never null or empty.",
    ),
    dg.AssetCheckSpec(
        "rejected_share_under_threshold",
        asset="raw_events",
        blocking=True,
        description="The share of the day's records that could not be loaded stays under the "
        "customer's ingest.max_rejected_share.",
    ),
    dg.AssetCheckSpec(
        "day_not_empty",
        asset="raw_events",
        blocking=True,
        description="The day loaded at least one event (unless the customer allows empty days).",
    ),
    dg.AssetCheckSpec(
        "day_complete",
        asset="raw_events",
        blocking=True,
        description="Every export file of the day was read to its end: a truncated or corrupt gzip "
        "loads the records before the break and fails this check, naming the file and "
        "the byte offset (unless the customer sets ingest.allow_incomplete_days).",
    ),
]


@dg.asset(
    partitions_def=customer_day_partitions, backfill_policy=BACKFILL_IN_ONE_RUN, group_name=GROUP, kinds={"mixpanel"}
)
def landed_exports(
    context: dg.AssetExecutionContext, growth: GrowthResource, mixpanel: MixpanelExportResource
) -> dg.MaterializeResult:
    """The customer's raw Mixpanel export files for one day, in place for loading.

    For a customer whose source is the Mixpanel Export API, this downloads the day (gzip, retries with
    backoff, rate limits respected) into ``GROWTH_HOME/landing/<customer>/``. For folder and object-storage
    sources it finds the day's files and records what is there.
    """
    landed = land_exports(
        growth.registry(),
        customer_days(context),
        growth.paths,
        download=lambda customer, day: mixpanel.download_day(customer, day, growth.paths, context.log),
    )
    return dg.MaterializeResult(
        metadata={
            "files": landed.files,
            "bytes": landed.bytes,
            "days": len(landed.days),
            "landed": dg.MetadataValue.md(landed.markdown()),
        }
    )


@dg.asset(
    partitions_def=customer_day_partitions,
    backfill_policy=BACKFILL_IN_ONE_RUN,
    group_name=GROUP,
    deps=[landed_exports],
    check_specs=RAW_EVENTS_CHECKS,
    kinds={"duckdb"},
)
def raw_events(context: dg.AssetExecutionContext, growth: GrowthResource) -> dg.MaterializeResult:
    """One row per Mixpanel event of the customer-day in ``raw.events`` of the customer's warehouse.

    Typed columns (event, distinct_id, UTC time, insert_id, device_id, user_id, the properties JSON), with
    seconds/milliseconds and project-timezone times normalised, and Mixpanel's dedup rule (same event,
    distinct_id, time and $insert_id) applied within the day and against rows already stored. Records that
    cannot be loaded go to ``raw.rejected_events`` with file, line and reason, while the good records of the
    same file still load; a file that breaks off (truncated or corrupt gzip) loads what precedes the break and
    marks the day incomplete. Re-materializing replaces exactly this day, in one transaction.
    """
    run = load_raw_events(
        growth.warehouses, growth.registry(), group_by_customer(customer_days(context)), log=context.log.info
    )
    metadata = run.metadata()
    for key in ("first_rejects", "per_day"):
        if key in metadata:
            metadata[key] = dg.MetadataValue.md(metadata[key])
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=name,
                passed=all(c.passed for _, _, c in results),
                severity=dg.AssetCheckSeverity.ERROR,
                metadata=raw_checks.check_metadata(results),
            )
            for name, results in run.checks.items()
        ],
    )
