"""The event catalogue: each event name with counts and dates, and its properties with types and fill rates."""

from __future__ import annotations

import duckdb

from growth_pipeline.lib.warehouse.sql import run_sql


def build_event_catalog(con: duckdb.DuckDBPyConnection, top: int = 25) -> dict:
    run_sql(con, "event_catalog")
    rows = con.execute(
        "SELECT c.event, c.events, c.distinct_ids, c.first_seen::DATE, c.last_seen::DATE, "
        "(SELECT count(*) FROM core.event_properties p WHERE p.event = c.event) "
        "FROM core.event_catalog c ORDER BY c.events DESC, c.event LIMIT ?",
        [top],
    ).fetchall()
    n_events, n_names = con.execute("SELECT coalesce(sum(events), 0), count(*) FROM core.event_catalog").fetchall()[0]
    n_props = con.execute("SELECT count(*) FROM core.event_properties").fetchall()[0][0]
    md = ["| event | events | distinct ids | first seen | last seen | properties |", "|---|---:|---:|---|---|---:|"]
    md += [f"| {e} | {n:,} | {u:,} | {f} | {last} | {p} |" for e, n, u, f, last, p in rows]
    return {"event_names": n_names, "events": int(n_events), "properties": n_props, "markdown": "\n".join(md)}
