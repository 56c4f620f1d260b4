"""Daily activity per canonical user (``core.user_daily``): the table features and labels are built from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from growth_pipeline.config import Customer
from growth_pipeline.lib.features.names import json_pointer
from growth_pipeline.lib.identities.stitching import ensure_identities_table
from growth_pipeline.lib.warehouse.sql import fetch_one, run_sql, table_exists, transaction


@dataclass(frozen=True)
class DayActivity:
    day: date
    users: int
    events: int
    sessions: int
    revenue: float
    purchases: int
    signups: int


def activity_variables(customer: Customer) -> dict:
    ev = customer.events
    goal_path, goal_value = (None, None)
    if ev.goal_condition:
        if len(ev.goal_condition) != 1:
            raise ValueError(
                f"customer {customer.id!r}, field 'events.goal_condition': one property condition "
                f"is supported, got {len(ev.goal_condition)}"
            )
        ((goal_key, raw_value),) = ev.goal_condition.items()
        goal_path = json_pointer(goal_key)
        goal_value = str(raw_value).lower() if isinstance(raw_value, bool) else str(raw_value)
    return {
        "signup_event": ev.signup,
        "conversion_events": list(ev.conversion),
        "goal_events": list(ev.goal) or ["\x00no goal"],
        "goal_path": goal_path,
        "goal_value": goal_value,
        "churn_event": ev.churn_event or "\x00no churn event",
        "revenue_path": json_pointer(ev.revenue_property) if ev.revenue_property else None,
        "channel_paths": [json_pointer(p) for p in ev.channel_properties],
    }


def build_user_daily(con: duckdb.DuckDBPyConnection, customer: Customer, day: date) -> DayActivity:
    """Replace day ``day`` of core.user_daily and core.user_daily_events (one transaction)."""
    ensure_identities_table(con)  # days load before the first identity build: then every id is its own user
    with transaction(con):
        run_sql(con, "user_daily_replace", day=day, **activity_variables(customer))
    row = fetch_one(con, "user_daily_day_totals", day=day)
    return DayActivity(day, *row)


def rekey_user_daily(con: duckdb.DuckDBPyConnection) -> int:
    """Move earlier days onto the canonical users of the latest identities; returns the ids moved."""
    if not table_exists(con, "core.user_daily"):
        return 0
    (moved,) = fetch_one(con, "user_daily_rekey_count")
    if moved:
        with transaction(con):
            run_sql(con, "user_daily_rekey")
    return moved
