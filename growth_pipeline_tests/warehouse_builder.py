"""Builds a customer warehouse from demo exports through the same steps the assets call (fast, no Dagster), for
tests of features, labels and models."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb

from growth_pipeline.config import Customer, Paths
from growth_pipeline.lib.features.steps import build_customer_daily
from growth_pipeline.lib.identities.steps import catalog_events, resolve_identities
from growth_pipeline.lib.ingest.raw_events import load_day
from growth_pipeline.lib.ingest.steps import load_customer_days
from growth_pipeline_tests.conftest import D1, write_export


def load_days(con: duckdb.DuckDBPyConnection, customer: Customer, paths: Paths, first: date, last: date) -> None:
    """raw_events, identities, event_catalog and user_daily of the days ``first`` to ``last``, in the order a
    backfill materializes them."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    load_customer_days(con, customer, days, paths)
    resolve_identities(con)
    catalog_events(con)
    build_customer_daily(con, customer, days)


def demo_activity(root, customer_id: str, n_users: int, start: date, days: int, seed: int):
    """A generated Powerplay-like customer of ``n_users`` over ``days``, loaded into a warehouse under ``root``;
    returns (customer, Activity)."""
    from growth_pipeline.config import REPO_ROOT, customer_like, load_customers
    from growth_pipeline.lib.demo.generator import generate_demo
    from growth_pipeline.lib.demo.spec import DemoSpec
    from growth_pipeline.lib.features.user_features import read_customer_activity

    generate_demo(DemoSpec("powerplay", n_users=n_users, start=start, days=days, seed=seed), root / "src")
    customer = customer_like(load_customers(REPO_ROOT / "customers.yaml").get("powerplay"), customer_id, root / "src")
    with duckdb.connect(str(root / f"{customer_id}.duckdb")) as con:
        load_days(con, customer, Paths(root / "home"), start, start + timedelta(days=days - 1))
        return customer, read_customer_activity(con, customer)


def load_records(con: duckdb.DuckDBPyConnection, root: Path, records: list) -> None:
    """Load ``records`` as the export file of day D1 under ``root`` (UTC timestamps)."""
    write_export(root / f"{D1}.jsonl", records)
    load_day(con, day=D1, files=[root / f"{D1}.jsonl"], root=root, timezone_name="UTC", timestamps="utc")


def materialize_load_stages(instance, customer: str, first: date, last: date) -> None:
    """Materialize the load stages (pipeline_shape.LOAD_STAGES) of ``customer`` for ``first``..``last`` as real
    Dagster runs, as the CLI does: a day-partitioned stage as one run over the range, a customer-wide one once."""
    import dagster as dg

    from growth_pipeline.definitions import defs
    from growth_pipeline.pipeline_shape import LOAD_STAGES, PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG

    for stage in LOAD_STAGES:
        if stage.partitioning == "customer":
            kw = {"partition_key": customer}
        else:
            kw = {
                "tags": {
                    PARTITION_RANGE_START_TAG: f"{customer}|{first}",
                    PARTITION_RANGE_END_TAG: f"{customer}|{last}",
                }
            }
        result = dg.materialize(
            list(defs.assets), selection=list(stage.assets), instance=instance, resources=defs.resources, **kw
        )
        assert result.success, f"{customer}: stage {stage.name} failed"
