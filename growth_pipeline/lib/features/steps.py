"""The feature steps: what the ``user_daily`` and ``user_features`` assets do, callable without Dagster.

- ``build_daily_activity``: each customer-day's ``core.user_daily``; ``build_customer_daily`` is the same for one
  customer on an open warehouse (what test builders and benchmarks call);
- ``build_user_features``: the feature frame as of the customer's latest day, written to
  ``features.user_features``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from growth_pipeline.config import Customer, CustomerRegistry
from growth_pipeline.lib.features.activity import DayActivity, build_user_daily
from growth_pipeline.lib.features.user_features import build_features, feature_columns, read_customer_activity
from growth_pipeline.lib.warehouse.connection import Warehouses
from growth_pipeline.lib.warehouse.sql import write_relations


@dataclass(frozen=True)
class DailyActivity:
    days: list[tuple[str, DayActivity]]  # (customer, the day's totals)

    def total(self, attr: str) -> float:
        return sum(getattr(a, attr) for _, a in self.days)

    def per_day_markdown(self) -> str:
        return "| customer | day | users | events | revenue |\n|---|---|---:|---:|---:|\n" + "\n".join(
            f"| {c} | {a.day} | {a.users:,} | {a.events:,} | {a.revenue:,.2f} |" for c, a in self.days
        )


def build_customer_daily(con: duckdb.DuckDBPyConnection, customer: Customer, days: list[date]) -> list[DayActivity]:
    """Replace each day of one customer's core.user_daily (each day in one transaction)."""
    return [build_user_daily(con, customer, day) for day in days]


def build_daily_activity(
    warehouses: Warehouses, registry: CustomerRegistry, days_by_customer: Mapping[str, list[date]]
) -> DailyActivity:
    rows = []
    for customer_id, days in days_by_customer.items():
        with warehouses.open(customer_id) as con:
            rows += [(customer_id, a) for a in build_customer_daily(con, registry.get(customer_id), days)]
    return DailyActivity(rows)


@dataclass(frozen=True)
class UserFeatures:
    as_of: date
    users: int
    identified_users: int
    features: list[str]
    categorical: list[str]
    null_shares: list[float]  # per feature, in the order of ``features``
    top_events: list[str]
    customer_properties: list[str]

    def feature_table(self) -> str:
        cats = set(self.categorical)
        return "| feature | type | null share |\n|---|---|---:|\n" + "\n".join(
            f"| {f} | {'categorical' if f in cats else 'numeric'} | {n:.0%} |"
            for f, n in zip(self.features, self.null_shares, strict=False)
        )


def build_user_features(warehouses: Warehouses, customer: Customer) -> UserFeatures:
    """One row per user as of the customer's latest day, replacing ``features.user_features``."""
    with warehouses.open(customer.id, read_only=True) as con:
        act = read_customer_activity(con, customer)
    frame = build_features(act, act.last_day)
    feats, cats = feature_columns(frame)
    with warehouses.open(customer.id) as con:
        write_relations(con, "user_features_replace", {"frame": frame})
    nulls = frame.select([pl.col(c).null_count() / max(frame.height, 1) for c in feats]).row(0)
    return UserFeatures(
        as_of=act.last_day,
        users=frame.height,
        identified_users=int(frame["identified"].sum()),
        features=feats,
        categorical=cats,
        null_shares=list(nulls),
        top_events=act.top_events,
        customer_properties=act.custom_props,
    )
