"""Partitions: customers are dynamic (from customers.yaml), days are daily; raw data is (customer, day)."""

from datetime import date

import dagster as dg

from growth_pipeline.config import first_partition_day

# The first day any customer can have data for: GROWTH_FIRST_DAY, else the earliest `history_start` in
# customers.yaml (2024-01-01 for customers without one); read when the code location loads. Every customer has
# a partition for every day from it (a cross product), and Dagster advises at most ~100,000 partitions per
# asset: customers x days since FIRST_DAY stays under that for ~90 customers over three years, ~9 customers
# over thirty (docs/partitions.md).
FIRST_DAY = first_partition_day()

customer_partitions = dg.DynamicPartitionsDefinition(name="customer")
day_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY.isoformat())
# One run can load a whole date range (a backfill in one run): start-up is paid once, not per day.
BACKFILL_IN_ONE_RUN = dg.BackfillPolicy.single_run()

customer_day_partitions = dg.MultiPartitionsDefinition({"customer": customer_partitions, "day": day_partitions})

# A customer-level asset reads every day of its own customer, and only that customer.
ALL_DAYS_OF_CUSTOMER = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="customer")


def customer_days(context: dg.AssetExecutionContext) -> list[tuple[str, date]]:
    """The (customer, day) pairs of this run, sorted: one for a single partition, many for a backfill run
    (a range run covers customers x days)."""
    pairs = []
    for key in context.partition_keys:
        mk = key if isinstance(key, dg.MultiPartitionKey) else customer_day_partitions.get_partition_key_from_str(key)
        dims = mk.keys_by_dimension
        pairs.append((dims["customer"], date.fromisoformat(dims["day"])))
    return sorted(pairs)


def group_by_customer(pairs: list[tuple[str, date]]) -> dict[str, list[date]]:
    grouped: dict[str, list[date]] = {}
    for customer_id, day in pairs:
        grouped.setdefault(customer_id, []).append(day)
    return grouped


def png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """A chart shown inline in the Dagster UI's metadata (markdown with a data URI)."""
    import base64

    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")
