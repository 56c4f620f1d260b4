"""The steps of the customer-wide ingestion tables: what the ``identities`` and ``event_catalog`` assets do, on an
open warehouse, callable without Dagster (test builders and benchmarks call them too)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from growth_pipeline.lib.features.activity import rekey_user_daily
from growth_pipeline.lib.identities.event_catalog import build_event_catalog
from growth_pipeline.lib.identities.stitching import build_identities


@dataclass(frozen=True)
class Identities:
    ids: int
    users: int
    identified_users: int
    ids_merged: int  # ids merged into another user
    resolved_by: dict[str, int]
    user_daily_ids_moved: int  # ids of earlier core.user_daily days moved onto their merged user


def resolve_identities(con: duckdb.DuckDBPyConnection) -> Identities:
    """Rebuild core.identities from all of raw.events, then move earlier days of core.user_daily onto the merged
    users, so they read as if built today."""
    stats = build_identities(con)
    moved = rekey_user_daily(con)
    return Identities(
        stats["ids"], stats["users"], stats["identified_users"], stats["ids_merged"], stats["resolved_by"], moved
    )


@dataclass(frozen=True)
class EventCatalog:
    event_names: int
    properties: int
    events: int
    markdown: str  # the most frequent events as a table


def catalog_events(con: duckdb.DuckDBPyConnection) -> EventCatalog:
    """Rebuild core.event_catalog and core.event_properties from all of raw.events."""
    summary = build_event_catalog(con)
    return EventCatalog(summary["event_names"], summary["properties"], summary["events"], summary["markdown"])
