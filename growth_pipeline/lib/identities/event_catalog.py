"""The event catalogue: each event name with counts and dates, and its properties with types and fill rates."""

from __future__ import annotations

import duckdb

from growth_pipeline.lib.warehouse.sql import fetch, fetch_one, run_sql


def build_event_catalog(con: duckdb.DuckDBPyConnection, top: int = 25) -> dict:
    run_sql(con, "event_catalog")
    rows = fetch(con, "event_catalog_top", top=top)
    n_events, n_names, n_props = fetch_one(con, "event_catalog_totals")
    md = ["| event | events | distinct ids | first seen | last seen | properties |", "|---|---:|---:|---|---|---:|"]
    md += [f"| {e} | {n:,} | {u:,} | {f} | {last} | {p} |" for e, n, u, f, last, p in rows]
    return {"event_names": n_names, "events": int(n_events), "properties": n_props, "markdown": "\n".join(md)}
