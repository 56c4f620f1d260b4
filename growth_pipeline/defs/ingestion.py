"""Ingestion: a customer's Mixpanel export for one day, landed and loaded into its DuckDB warehouse.

Both assets accept a single (customer, day) partition or a range of them in one run (backfills), looping
over the days in order; the metadata then sums the range and lists each day.
"""

import dagster as dg

from growth_pipeline.config import MixpanelApiSource
from growth_pipeline.defs.partitions import (
    BACKFILL_IN_ONE_RUN,
    customer_day_partitions,
    customer_days,
    group_by_customer,
)
from growth_pipeline.defs.resources import GrowthResource, MixpanelExportResource
from growth_pipeline.lib.ingest import raw_checks
from growth_pipeline.lib.ingest.raw_events import load_day
from growth_pipeline.lib.ingest.sources import day_files

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
    rows, n_files, n_bytes = [], 0, 0
    registry = growth.registry()
    for customer_id, day in customer_days(context):
        customer = registry.get(customer_id)
        download = {}
        if isinstance(customer.source, MixpanelApiSource):
            download = mixpanel.download_day(customer, day, growth.paths, context.log)
        root, files = day_files(customer, day, growth.paths)
        size = sum(f.stat().st_size for f in files)
        n_files, n_bytes = n_files + len(files), n_bytes + size
        names = ", ".join(f"`{f.relative_to(root)}`" for f in files) or "(none)"
        extra = f" (downloaded in {download['attempts']} attempt(s))" if download else ""
        rows.append(f"| {customer_id} | {day} | {len(files)} | {size:,} | {names}{extra} |")
    return dg.MaterializeResult(
        metadata={
            "files": n_files,
            "bytes": n_bytes,
            "days": len(rows),
            "landed": dg.MetadataValue.md(
                "| customer | day | files | bytes | names |\n|---|---|---:|---:|---|\n" + "\n".join(rows)
            ),
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
    loads, outcomes, first_rejects = [], {}, []
    registry = growth.registry()
    for customer_id, days in group_by_customer(customer_days(context)).items():
        customer = registry.get(customer_id)
        # one connection per customer for the whole range: opening a DuckDB file costs ~50 ms
        with growth.warehouse(customer_id) as con:
            for day in days:
                root, files = day_files(customer, day, growth.paths)
                load = load_day(
                    con,
                    day=day,
                    files=files,
                    root=root,
                    timezone_name=customer.timezone,
                    timestamps=customer.timestamps,
                )
                for check in raw_checks.day_checks(con, day, load, customer.ingest):
                    outcomes.setdefault(check.name, []).append((customer_id, day, check))
                first_rejects += [
                    (customer_id, day, *r)
                    for r in con.execute(
                        "SELECT source_file, line_number, reason FROM raw.rejected_events WHERE event_date = ? "
                        "ORDER BY source_file, line_number LIMIT 5",
                        [day],
                    ).fetchall()
                ]
                context.log.info(
                    f"{customer_id} {day}: loaded {load.loaded}, duplicates {load.duplicates}, "
                    f"rejected {load.rejected} of {load.lines} lines"
                )
                loads.append((customer_id, load))
    metadata = raw_checks.load_metadata(loads, first_rejects, {c: str(growth.paths.warehouse(c)) for c, _ in loads})
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
            for name, results in outcomes.items()
        ],
    )
