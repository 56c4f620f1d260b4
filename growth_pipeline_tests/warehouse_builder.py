"""Builds a customer warehouse from demo exports through the same library calls the assets make (fast, no
Dagster), for tests of features, labels and models."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from growth_pipeline.config import Customer, Paths
from growth_pipeline.lib.features.activity import build_user_daily, rekey_user_daily
from growth_pipeline.lib.identities.event_catalog import build_event_catalog
from growth_pipeline.lib.identities.stitching import build_identities
from growth_pipeline.lib.ingest.raw_events import load_day
from growth_pipeline.lib.ingest.sources import day_files


def load_days(con: duckdb.DuckDBPyConnection, customer: Customer, paths: Paths, first: date, last: date) -> None:
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    for d in days:
        root, files = day_files(customer, d, paths)
        load_day(con, day=d, files=files, root=root, timezone_name=customer.timezone, timestamps=customer.timestamps)
    build_identities(con)
    rekey_user_daily(con)
    build_event_catalog(con)
    for d in days:
        build_user_daily(con, customer, d)


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
